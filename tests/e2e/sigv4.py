"""A minimal SigV4 signer for tests that need what SDKs will not do: a
chosen clock, aws-chunked payload signatures, tampering."""
import datetime
import hashlib
import hmac
from urllib.parse import parse_qsl, quote, unquote, urlsplit

EMPTY = hashlib.sha256(b"").hexdigest()


def _h(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def amz_now(offset_secs=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_secs)
    return t.strftime("%Y%m%dT%H%M%SZ")


def sign(method, url, creds, payload_hash, headers=None, amz_date=None, region="us-east-1", service="s3"):
    """Returns (headers with Authorization, seed signature, signing key, scope)."""
    amz_date = amz_date or amz_now()
    u = urlsplit(url)
    path = quote(unquote(u.path), safe="/~")
    q = sorted(parse_qsl(u.query, keep_blank_values=True))
    cq = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in q)
    hs = {k.lower(): str(v) for k, v in (headers or {}).items()}
    hs["host"] = u.netloc
    hs["x-amz-date"] = amz_date
    hs["x-amz-content-sha256"] = payload_hash
    signed = sorted(hs)
    canon = "".join(f"{k}:{hs[k].strip()}\n" for k in signed)
    creq = "\n".join([method, path, cq, canon, ";".join(signed), payload_hash])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = _h(_h(_h(_h(("AWS4" + creds[1]).encode(), amz_date[:8]), region), service), "aws4_request")
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    hs["authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds[0]}/{scope}, "
                           f"SignedHeaders={';'.join(signed)}, Signature={sig}")
    return hs, sig, key, scope


def chunked_body(data, chunk_size, seed_sig, key, scope, amz_date, corrupt_chunk=None):
    """aws-chunked framing with a signature per chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)."""
    out, prev = b"", seed_sig
    chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for n, c in enumerate(chunks):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY, hashlib.sha256(c).hexdigest()])
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        if n == corrupt_chunk:
            sig = "0" * 64
        out += f"{len(c):x};chunk-signature={sig}\r\n".encode() + c + b"\r\n"
        prev = sig
    return out

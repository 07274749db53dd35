"""Helpers for the attack table (test_attack_table.py): raw HTTP requests
sent byte-exact (http.client: no re-quoting of %-escapes, no dot-segment
removal), hand-made SigV4/SigV2 pre-signed URLs with renamed parameters,
and the error code of any answer (S3/IAM/STS XML `<Code>`, KMS JSON
`__type`)."""
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import re
import ssl
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import sigv4
from sigv4 import EMPTY, amz_now

UNSIGNED = "UNSIGNED-PAYLOAD"


@dataclass
class Resp:
    status: int
    code: object  # error code, "" for an error without a body (HEAD), None for success
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    data: object = None  # an SDK call's parsed answer

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"Resp({self.status}, {self.code!r}, {self.body[:400]!r})"


def code_of(status, body):
    """The error code of a response: XML <Code>, JSON __type, '' if none."""
    if status < 300:
        return None
    m = re.search(rb"<Code>([^<]*)</Code>", body or b"")
    if m:
        return m.group(1).decode()
    try:
        t = json.loads(body).get("__type", "")
        return t.rsplit("#", 1)[-1]
    except Exception:
        return ""


def send(server, method, target, headers=None, body=b"", secure=False, timeout=30):
    """One request with `target` (path?query) put on the wire exactly as given."""
    if secure:
        ctx = ssl.create_default_context(cafile=server.ca)
        conn = http.client.HTTPSConnection("127.0.0.1", server.https_port, context=ctx, timeout=timeout)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=timeout)
    try:
        hs = dict(headers or {})
        if (body or method in ("PUT", "POST")) and not any(k.lower() == "content-length" for k in hs):
            hs["Content-Length"] = str(len(body))
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        if not any(k.lower() == "host" for k in hs):
            hs["Host"] = f"127.0.0.1:{server.https_port if secure else server.http_port}"
        for k, v in hs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, code_of(r.status, data), data, {k.lower(): v for k, v in r.getheaders()})
    finally:
        conn.close()


def base(server, secure=False):
    return server.https if secure else server.http


def signed(server, method, target, creds, body=b"", headers=None, secure=False, payload_hash=None,
           region="us-east-1", service="s3", amz_date=None, unsigned_headers=None, auth_rewrite=None):
    """A header-signed (SigV4) request. `target` may carry encoded query names:
    sigv4.sign decodes them (parse_qsl) into the canonical request, exactly
    what an attacker signing `?version%49d=` does. `unsigned_headers` are
    added after signing; `auth_rewrite` may tamper with the Authorization."""
    hs = dict(headers or {})
    if len(creds) > 2 and creds[2]:
        hs["x-amz-security-token"] = creds[2]
    ph = payload_hash or hashlib.sha256(body).hexdigest()
    out, *_ = sigv4.sign(method, base(server, secure) + target, creds, ph, headers=hs, amz_date=amz_date,
                         region=region, service=service)
    out.pop("host", None)
    if unsigned_headers:
        out.update(unsigned_headers)
    if auth_rewrite:
        out["authorization"] = auth_rewrite(out["authorization"])
    return send(server, method, target, out, body, secure)


def canonical_query(pairs):
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(pairs))


def presign_v4(server, method, target, creds, expires=300, amz_date=None, region="us-east-1", service="s3",
               signed_headers=None, rename=None, secure=False, drop=()):
    """A SigV4 pre-signed URL target (path?query). The signature covers the
    canonical (decoded) names; `rename` maps an auth parameter's name to the
    spelling put on the wire (e.g. X-Amz-SignedHeaders -> X-Amz-%53ignedHeaders),
    which leaves the signature valid."""
    amz_date = amz_date or amz_now()
    u = urlsplit(target)
    own = parse_qsl(u.query, keep_blank_values=True)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    hs = {k.lower(): str(v) for k, v in (signed_headers or {}).items()}
    hs["host"] = f"127.0.0.1:{server.https_port if secure else server.http_port}"
    names = sorted(hs)
    auth = [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", f"{creds[0]}/{scope}"),
            ("X-Amz-Date", amz_date), ("X-Amz-Expires", str(expires)), ("X-Amz-SignedHeaders", ";".join(names))]
    if len(creds) > 2 and creds[2]:
        auth.append(("X-Amz-Security-Token", creds[2]))
    auth = [(k, v) for k, v in auth if k not in drop]
    path = quote(unquote(u.path), safe="/~")
    canon = "".join(f"{k}:{hs[k].strip()}\n" for k in names)
    creq = "\n".join([method, path, canonical_query(own + auth), canon, ";".join(names), UNSIGNED])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = sigv4._h(sigv4._h(sigv4._h(sigv4._h(("AWS4" + creds[1]).encode(), amz_date[:8]), region), service),
                   "aws4_request")
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    rename = rename or {}
    wire = [f"{rename.get(k, quote(k, safe='~'))}={quote(v, safe='~')}" for k, v in auth]
    wire.append(f"{rename.get('X-Amz-Signature', 'X-Amz-Signature')}={sig}")
    q = "&".join(([u.query] if u.query else []) + wire)
    return f"{u.path}?{q}"


def presign_v2(method, target, creds, expires_at, rename=None, amz_headers=None, content_type=""):
    """A SigV2 pre-signed target; the CanonicalizedResource is the path plus
    the sub-resources of `target`'s own query (as the SDKs sign them)."""
    u = urlsplit(target)
    resource = unquote(u.path)
    if u.query:
        resource += "?" + u.query
    amz = "".join(f"{k.lower()}:{v}\n" for k, v in sorted((amz_headers or {}).items()))
    sts = f"{method}\n\n{content_type}\n{expires_at}\n{amz}{resource}"
    sig = base64.b64encode(hmac.new(creds[1].encode(), sts.encode(), hashlib.sha1).digest()).decode()
    rename = rename or {}
    parts = [(rename.get("AWSAccessKeyId", "AWSAccessKeyId"), creds[0]),
             (rename.get("Expires", "Expires"), str(expires_at)),
             (rename.get("Signature", "Signature"), quote(sig, safe=""))]
    q = "&".join(([u.query] if u.query else []) + [f"{k}={v}" for k, v in parts])
    return f"{u.path}?{q}"


def sigv2_header(method, target, creds, headers=None, content_type="", content_md5=""):
    """Authorization: AWS AK:sig (SigV2 header auth) for `target`."""
    date = formatdate(usegmt=True)
    u = urlsplit(target)
    resource = unquote(u.path) + (("?" + u.query) if u.query else "")
    amz = "".join(f"{k.lower()}:{v}\n" for k, v in sorted((headers or {}).items()) if k.lower().startswith("x-amz-"))
    sts = f"{method}\n{content_md5}\n{content_type}\n{date}\n{amz}{resource}"
    sig = base64.b64encode(hmac.new(creds[1].encode(), sts.encode(), hashlib.sha1).digest()).decode()
    return dict(headers or {}, Date=date, Authorization=f"AWS {creds[0]}:{sig}")


def md5_b64(b):
    return base64.b64encode(hashlib.md5(b).digest()).decode()


def tagging_xml(tags):
    inner = "".join(f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in tags.items())
    return f'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>{inner}</TagSet></Tagging>'.encode()


def delete_xml(keys, quiet=False):
    objs = "".join(
        f"<Object><Key>{k}</Key>" + (f"<VersionId>{v}</VersionId>" if v else "") + "</Object>"
        for k, v in keys)
    q = "<Quiet>true</Quiet>" if quiet else ""
    return f'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{q}{objs}</Delete>'.encode()


def ago(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    return t.strftime("%Y%m%dT%H%M%SZ")


def chunk_frames(data, chunk_size, seed_sig, key, scope, amz_date):
    """The aws-chunked frames (each with its chained signature), the final
    0-length frame last; concatenated they are sigv4.chunked_body."""
    frames, prev = [], seed_sig
    chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for c in chunks:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY, hashlib.sha256(c).hexdigest()])
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        frames.append(f"{len(c):x};chunk-signature={sig}\r\n".encode() + c + b"\r\n")
        prev = sig
    return frames

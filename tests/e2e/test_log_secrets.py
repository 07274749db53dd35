"""Secrets never reach the server log, even at RUST_LOG=trace.

One server runs with every target at trace (s3s included) and serves a
representative authentication workload: SigV4 header auth, aws-chunked
uploads (signed chunks over HTTP, boto3's trailer checksums over HTTPS),
pre-signed URLs (valid and tampered), SigV2 (header and query), wrong
secrets, STS (GetSessionToken, AssumeRole), IAM CreateAccessKey, SSE-C and
the built-in KMS. Then the whole log is searched for every secret the
workload handled: secret keys, session tokens, SSE-C keys, KMS plaintexts,
the signatures that were sent (a valid signature can be replayed for 15
minutes) and the signatures the server *expected* for requests signed with
a wrong secret (s3s logs those at debug level: whoever reads the log can
then forge that request). Each kind is its own test case.

Also: generated root credentials are written 0600 in a 0700 data dir."""
import base64
import email.utils
import hashlib
import hmac
import json
import os
import re
import stat
import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, parse_qsl

import boto3
import pytest
import requests
from botocore.config import Config

from conftest import ALT, BOOTSTRAP, MAIN, ROOT, Server, binary
from denial import bucket_state, denied, object_state
from sigv4 import amz_now, chunked_body, sign

MAIN_ID = "210000000001"

# kind -> human description used in assertion messages
KINDS = {
    "main-secret": "the MAIN account's long-term secret access key",
    "alt-secret": "the ALT account's long-term secret access key",
    "root-secret": "the root account's secret access key (STRONGROOM_ROOT_SECRET_KEY)",
    "iam-created-secret": "the SecretAccessKey returned by IAM CreateAccessKey",
    "sts-session-secret": "the temporary SecretAccessKey returned by STS GetSessionToken",
    "sts-role-secret": "the temporary SecretAccessKey returned by STS AssumeRole",
    "session-token": "an STS session token (GetSessionToken / AssumeRole)",
    "signing-key": "a derived SigV4 signing key (kDate/kRegion/kService/kSigning chain), hex",
    "sse-c-key-b64": "an SSE-C customer key (base64, as sent in x-amz-server-side-encryption-customer-key)",
    "sse-c-key-raw": "an SSE-C customer key (raw bytes as hex or as a Rust byte-array Debug string)",
    "kms-plaintext": "a KMS Encrypt plaintext or a GenerateDataKey plaintext data key",
    "valid-header-signature": "a valid SigV4/SigV2 Authorization-header signature that was sent",
    "valid-chunk-signature": "a valid aws-chunked chunk signature that was sent",
    "valid-presigned-signature": "a valid pre-signed URL signature (X-Amz-Signature / SigV2 Signature)",
    "expected-signature-wrong-secret": "the signature the server EXPECTED for a request signed with a wrong "
                                       "secret (forgeable from the log)",
    "expected-signature-tampered-presign": "the signature the server EXPECTED for a tampered pre-signed URL",
    "expected-signature-wrong-sigv2": "the SigV2 signature the server EXPECTED for a wrong-secret request",
}


# --- signing helpers the SDKs will not give us -------------------------------------------------

def _hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date8, region="us-east-1", service="s3"):
    return _hmac256(_hmac256(_hmac256(_hmac256(("AWS4" + secret).encode(), date8), region), service),
                    "aws4_request")


def presign_v4(method, url, creds, amz_date, expires=300):
    """A SigV4 query-string-signed URL (SignedHeaders=host, UNSIGNED-PAYLOAD) and its signature."""
    u = urlsplit(url)
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    q = sorted([("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", f"{creds[0]}/{scope}"),
                ("X-Amz-Date", amz_date), ("X-Amz-Expires", str(expires)), ("X-Amz-SignedHeaders", "host")])
    cq = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in q)
    path = quote(unquote(u.path), safe="/~")
    creq = "\n".join([method, path, cq, f"host:{u.netloc}\n", "host", "UNSIGNED-PAYLOAD"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(signing_key(creds[1], amz_date[:8]), sts.encode(), hashlib.sha256).hexdigest()
    return f"{u.scheme}://{u.netloc}{path}?{cq}&X-Amz-Signature={sig}", sig


def v2_sig(secret, string_to_sign):
    return base64.b64encode(hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()).decode()


def v2_header_get(url, creds, date):
    """A SigV2 header-signed GET of a path-style object URL: (headers, signature)."""
    path = urlsplit(url).path
    sig = v2_sig(creds[1], f"GET\n\n\n{date}\n{path}")
    return {"Date": date, "Authorization": f"AWS {creds[0]}:{sig}"}, sig


def v2_presign_get(url, creds, expires):
    u = urlsplit(url)
    sig = v2_sig(creds[1], f"GET\n\n\n{expires}\n{u.path}")
    return (f"{u.scheme}://{u.netloc}{u.path}?AWSAccessKeyId={creds[0]}&Expires={expires}"
            f"&Signature={quote(sig, safe='')}"), sig


def http_date(offset=0):
    return email.utils.formatdate(time.time() + offset, usegmt=True)


# --- the workload ------------------------------------------------------------------------------

class Recorder:
    """Collects, per kind, every secret value the workload handled."""

    def __init__(self):
        self.values = defaultdict(set)

    def add(self, kind, value):
        assert kind in KINDS, kind
        if isinstance(value, bytes):
            value = value.decode()
        assert value, f"empty value recorded for {kind}"
        self.values[kind].add(value)

    def hook(self, client):
        """Record the signatures, signing keys' outputs and tokens a well-signed boto3 client sends."""
        def before_send(request, **_):
            auth = request.headers.get("Authorization")
            if isinstance(auth, bytes):
                auth = auth.decode()
            if auth:
                m = re.search(r"Signature=([0-9a-f]{64})", auth)
                if m:
                    self.add("valid-header-signature", m.group(1))
                m = re.match(r"AWS [^:]+:(\S+)$", auth)
                if m:
                    self.add("valid-header-signature", m.group(1))
            tok = request.headers.get("X-Amz-Security-Token")
            if tok:
                self.add("session-token", tok)
            return None
        client.meta.events.register("before-send", before_send)
        return client


def s3c(server, creds, secure=False, **cfg):
    kw = {}
    if len(creds) > 2:
        kw["aws_session_token"] = creds[2]
    cfg.setdefault("signature_version", "s3v4")
    return boto3.client("s3", endpoint_url=server.https if secure else server.http,
                        aws_access_key_id=creds[0], aws_secret_access_key=creds[1], region_name="us-east-1",
                        verify=server.ca if secure else None,
                        config=Config(retries={"max_attempts": 1}, **cfg), **kw)


def svc(server, name, creds):
    kw = {"aws_session_token": creds[2]} if len(creds) > 2 else {}
    return boto3.client(name, endpoint_url=server.http, aws_access_key_id=creds[0],
                        aws_secret_access_key=creds[1], region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}), **kw)


def run_workload(s: Server, rec: Recorder):
    for kind, creds in (("main-secret", MAIN), ("alt-secret", ALT), ("root-secret", ROOT)):
        rec.add(kind, creds[1])
    bucket = f"logs-{uuid.uuid4().hex[:16]}"

    # SigV4 header auth, plain HTTP
    s3 = rec.hook(s.client(MAIN))
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"value")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"value"
    s3.list_objects_v2(Bucket=bucket)
    rec.hook(s.client(ALT)).list_buckets()
    rec.hook(s.client(ROOT)).list_buckets()

    # HTTPS: boto3 sends aws-chunked bodies with trailing checksums
    s3s = rec.hook(s.client(MAIN, secure=True))
    s3s.put_object(Bucket=bucket, Key="tls", Body=os.urandom(300_000))
    s3s.get_object(Bucket=bucket, Key="tls")["Body"].read()

    # aws-chunked with signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD); one corrupt chunk first
    data = os.urandom(150_000)
    url = f"{s.http}/{bucket}/chunked"
    date = amz_now()
    extra = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    hs, seed, key, scope = sign("PUT", url, MAIN, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", extra, amz_date=date)
    rec.add("valid-header-signature", seed)
    rec.add("signing-key", key.hex())
    bad = chunked_body(data, 65536, seed, key, scope, date, corrupt_chunk=1)
    denied(lambda: requests.put(url, data=bad, headers=dict(hs, **{"content-length": str(len(bad))})),
           watch=bucket_state(s3, bucket, "chunked"), want=(403, "SignatureDoesNotMatch"))
    good = chunked_body(data, 65536, seed, key, scope, date)
    for sig in re.findall(rb"chunk-signature=([0-9a-f]{64})", good):
        rec.add("valid-chunk-signature", sig)
    r = requests.put(url, data=good, headers=dict(hs, **{"content-length": str(len(good))}))
    assert r.status_code == 200, r.text

    # manual SigV4 header requests: one valid (proves our canonical request is the server's) and,
    # at another timestamp, the same request with a wrong secret; record what the server expects
    for creds in (MAIN, ALT):
        wrong = (creds[0], "Wrong" + creds[1][5:])
        for method, path, body in (("GET", f"/{bucket}?list-type=2", b""), ("PUT", f"/{bucket}/w", b"wrong-put")):
            url = f"{s.http}{path}"
            ph = hashlib.sha256(body).hexdigest()
            hs, sig, key, _ = sign(method, url, creds, ph, amz_date=amz_now(-30))
            rec.add("valid-header-signature", sig)
            rec.add("signing-key", key.hex())
            # the bucket, and the key the PUT names
            watch = bucket_state(s3, bucket, "w")
            if creds is MAIN:
                r = requests.request(method, url, data=body, headers=hs)
                assert r.status_code == 200, r.text
            else:  # ALT: signed fine, no access
                denied(lambda: requests.request(method, url, data=body, headers=hs), watch=watch)
            date = amz_now()
            hs, _, _, _ = sign(method, url, wrong, ph, amz_date=date)
            denied(lambda: requests.request(method, url, data=body, headers=hs), watch=watch,
                   want=(403, "SignatureDoesNotMatch"))
            _, expected, key, _ = sign(method, url, creds, ph, amz_date=date)
            rec.add("expected-signature-wrong-secret", expected)
            rec.add("signing-key", key.hex())

    # pre-signed URLs: boto3's (valid), ours (valid, wrong secret, tampered)
    for c in (s3, s3s):
        u = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=600)
        rec.add("valid-presigned-signature", dict(parse_qsl(urlsplit(u).query))["X-Amz-Signature"])
        assert requests.get(u, verify=s.ca).content == b"value"
    obj = f"{s.http}/{bucket}/k"
    d1 = amz_now(-20)
    ok_url, ok_sig = presign_v4("GET", obj, MAIN, d1)
    rec.add("valid-presigned-signature", ok_sig)
    assert requests.get(ok_url).content == b"value", "our pre-signer agrees with the server"
    tampered = ok_url.replace(f"/{bucket}/k?", f"/{bucket}/other?")
    denied(lambda: requests.get(tampered), watch=object_state(s3, bucket, "other"),
           want=(403, "SignatureDoesNotMatch"))
    rec.add("expected-signature-tampered-presign", presign_v4("GET", f"{s.http}/{bucket}/other", MAIN, d1)[1])
    d2 = amz_now()
    bad_url, _ = presign_v4("GET", obj, (MAIN[0], "x" * 40), d2)
    denied(lambda: requests.get(bad_url), watch=object_state(s3, bucket, "k"), want=(403, "SignatureDoesNotMatch"))
    rec.add("expected-signature-wrong-secret", presign_v4("GET", obj, MAIN, d2)[1])

    # STS: GetSessionToken and AssumeRole (via an IAM user whose key IAM generated)
    sess = rec.hook(svc(s, "sts", MAIN)).get_session_token(DurationSeconds=900)["Credentials"]
    rec.add("sts-session-secret", sess["SecretAccessKey"])
    rec.add("session-token", sess["SessionToken"])
    tmp = (sess["AccessKeyId"], sess["SecretAccessKey"], sess["SessionToken"])
    ts3 = rec.hook(s3c(s, tmp))
    ts3.list_objects_v2(Bucket=bucket)
    ts3.put_object(Bucket=bucket, Key="by-session", Body=b"s")
    u = ts3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    rec.add("valid-presigned-signature", dict(parse_qsl(urlsplit(u).query))["X-Amz-Signature"])
    assert requests.get(u).content == b"value"

    iam = rec.hook(svc(s, "iam", MAIN))
    user, role = f"logu-{uuid.uuid4().hex[:6]}", f"logr-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    ak = iam.create_access_key(UserName=user)["AccessKey"]
    rec.add("iam-created-secret", ak["SecretAccessKey"])
    ucreds = (ak["AccessKeyId"], ak["SecretAccessKey"])
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:user/{user}"}}]}
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=role, PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    time.sleep(0.2)
    rec.hook(s3c(s, ucreds)).list_objects_v2(Bucket=bucket)
    rc = rec.hook(svc(s, "sts", ucreds)).assume_role(
        RoleArn=f"arn:aws:iam::{MAIN_ID}:role/{role}", RoleSessionName="logs")["Credentials"]
    rec.add("sts-role-secret", rc["SecretAccessKey"])
    rec.add("session-token", rc["SessionToken"])
    rs3 = rec.hook(s3c(s, (rc["AccessKeyId"], rc["SecretAccessKey"], rc["SessionToken"])))
    rs3.list_objects_v2(Bucket=bucket)
    rs3.put_object(Bucket=bucket, Key="by-role", Body=b"r")

    # SSE-C over HTTPS
    ck = os.urandom(32)
    rec.add("sse-c-key-b64", base64.b64encode(ck).decode())
    rec.add("sse-c-key-raw", ck.hex())
    rec.add("sse-c-key-raw", ck.hex().upper())
    rec.add("sse-c-key-raw", str(list(ck)))  # Rust's Debug of [u8; 32] / Vec<u8>
    ssec = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(ck).decode(),
            "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(ck).digest()).decode()}
    s3s.put_object(Bucket=bucket, Key="ssec", Body=b"customer-keyed", **ssec)
    assert s3s.get_object(Bucket=bucket, Key="ssec", **ssec)["Body"].read() == b"customer-keyed"
    s3s.head_object(Bucket=bucket, Key="ssec", **ssec)
    wrong_ck = os.urandom(32)
    rec.add("sse-c-key-b64", base64.b64encode(wrong_ck).decode())
    rec.add("sse-c-key-raw", wrong_ck.hex())
    with pytest.raises(Exception):
        s3s.get_object(Bucket=bucket, Key="ssec", SSECustomerAlgorithm="AES256",
                       SSECustomerKey=base64.b64encode(wrong_ck).decode(),
                       SSECustomerKeyMD5=base64.b64encode(hashlib.md5(wrong_ck).digest()).decode())

    # SigV2: boto3 header and query signing, then ours (valid, wrong secret, tampered)
    v2 = rec.hook(s.client(MAIN, signature_version="s3"))
    v2.put_object(Bucket=bucket, Key="v2", Body=b"two")
    assert v2.get_object(Bucket=bucket, Key="v2")["Body"].read() == b"two"
    u = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "v2"})
    rec.add("valid-presigned-signature", dict(parse_qsl(urlsplit(u).query))["Signature"])
    assert requests.get(u).content == b"two"
    obj2 = f"{s.http}/{bucket}/v2"
    hs, sig = v2_header_get(obj2, MAIN, http_date(-60))
    rec.add("valid-header-signature", sig)
    assert requests.get(obj2, headers=hs).content == b"two", "our SigV2 signer agrees with the server"
    date = http_date()
    hs, _ = v2_header_get(obj2, (MAIN[0], "wrong" * 8), date)
    denied(lambda: requests.get(obj2, headers=hs), watch=object_state(s3, bucket, "v2"),
           want=(403, "SignatureDoesNotMatch"))
    rec.add("expected-signature-wrong-sigv2", v2_header_get(obj2, MAIN, date)[1])
    exp = int(time.time()) + 300
    ok_url, sig = v2_presign_get(obj2, MAIN, exp)
    rec.add("valid-presigned-signature", sig)
    assert requests.get(ok_url).content == b"two"
    denied(lambda: requests.get(ok_url.replace(f"/{bucket}/v2?", f"/{bucket}/other?")),
           watch=object_state(s3, bucket, "other"), want=(403, "SignatureDoesNotMatch"))
    rec.add("expected-signature-wrong-sigv2", v2_presign_get(f"{s.http}/{bucket}/other", MAIN, exp)[1])
    bad_url, _ = v2_presign_get(obj2, (MAIN[0], "wrong" * 8), exp + 1)
    denied(lambda: requests.get(bad_url), watch=object_state(s3, bucket, "v2"), want=(403, "SignatureDoesNotMatch"))
    rec.add("expected-signature-wrong-sigv2", v2_presign_get(obj2, MAIN, exp + 1)[1])

    # KMS on the same endpoint: plaintexts in, data keys out
    kms = rec.hook(svc(s, "kms", MAIN))
    kid = kms.create_key(Description="log-secrets")["KeyMetadata"]["KeyId"]
    pt = f"KMS-PLAINTEXT-{uuid.uuid4().hex}".encode()
    rec.add("kms-plaintext", pt.decode())
    rec.add("kms-plaintext", base64.b64encode(pt).decode())
    rec.add("kms-plaintext", pt.hex())
    blob = kms.encrypt(KeyId=kid, Plaintext=pt)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == pt
    dk = kms.generate_data_key(KeyId=kid, KeySpec="AES_256")["Plaintext"]
    rec.add("kms-plaintext", base64.b64encode(dk).decode())
    rec.add("kms-plaintext", dk.hex())
    rec.add("kms-plaintext", str(list(dk)))
    kms.decrypt(CiphertextBlob=kms.generate_data_key(KeyId=kid, KeySpec="AES_256")["CiphertextBlob"])
    # SSE-KMS through S3 as well (the server's own data-key plaintexts stay its business)
    s3.put_object(Bucket=bucket, Key="kms", Body=b"k", ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
    s3.get_object(Bucket=bucket, Key="kms")["Body"].read()


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    data = tmp_path_factory.mktemp("log-secrets") / "data"
    s = Server(str(data))
    rec = Recorder()
    s.start(env_extra={"RUST_LOG": "trace"})
    try:
        run_workload(s, rec)
    finally:
        s.stop()
    log = Path(s.log_path).read_bytes()
    assert len(log) > 10_000, "RUST_LOG=trace produced (almost) no log: is the filter honoured?"
    return Logged(s.log_path, log, rec.values)


def variants(v: str):
    out = {v, quote(v, safe=""), quote(v, safe="/")}
    return [x.encode() for x in out]


class Logged:
    """The log and the recorded secrets; its repr names neither (pytest prints fixture values)."""

    def __init__(self, path, log, values):
        self.path, self.log, self.values = path, log, values

    def __repr__(self):
        return f"<server log {self.path}: {len(self.log)} bytes; {sum(map(len, self.values.values()))} secrets>"


TARGET = re.compile(rb"\b(TRACE|DEBUG|INFO|WARN|ERROR)\b.*?\s([a-z_][a-z0-9_]*(?:::[a-z0-9_]+)+):\s")


def where(log: bytes, needles):
    """Line numbers (1-based) holding a needle, with the line's level and tracing target only."""
    hits = []
    for n, line in enumerate(log.split(b"\n"), 1):
        if any(x in line for x in needles):
            m = TARGET.search(re.sub(rb"\x1b\[[0-9;]*m", b"", line))
            hits.append(f"line {n}: " + (f"{m.group(1).decode()} {m.group(2).decode()}" if m else "?"))
    return hits


@pytest.mark.parametrize("kind", list(KINDS))
def test_secret_kind_never_logged(logged, kind):
    values = logged.values.get(kind, set())
    assert values, f"the workload recorded no {kind} value (test bug)"
    leaked = [v for v in values if any(x in logged.log for x in variants(v))]
    n_leaked = len(leaked)
    hits = where(logged.log, [x for v in leaked for x in variants(v)]) if leaked else []
    del leaked
    assert n_leaked == 0, (f"{KINDS[kind]} appears in the server log ({n_leaked} of {len(values)} values) "
                           f"-- {logged.path}:\n  " + "\n  ".join(hits[:15]) +
                           (f"\n  ... {len(hits) - 15} more lines" if len(hits) > 15 else ""))


# --- generated root credentials ----------------------------------------------------------------

class GeneratedRootServer(Server):
    """A Server started WITHOUT STRONGROOM_ROOT_*, so it generates root credentials."""

    def start(self, env_extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_ROOT_")}
        env.setdefault("RUST_LOG", "info,s3s=off")
        env.update(env_extra or {})
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [binary(), "serve", "--data-dir", self.data_dir,
             "--http", f"127.0.0.1:{self.http_port}", "--https", f"127.0.0.1:{self.https_port}",
             "--admin", f"127.0.0.1:{self.admin_port}", "--website", "off", "--bootstrap", str(BOOTSTRAP),
             *self.extra_args],
            stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            assert self.proc.poll() is None, f"server exited early; see {self.log_path}"
            try:
                if requests.get(f"http://127.0.0.1:{self.admin_port}/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy")


def test_generated_root_credentials_file_is_private(tmp_path):
    data = tmp_path / "data"
    s = GeneratedRootServer(str(data)).start()
    try:
        creds = data / "root-credentials"
        assert creds.exists(), "no STRONGROOM_ROOT_* in the environment: root credentials are generated"
        mode = stat.S_IMODE(creds.stat().st_mode)
        assert mode == 0o600, f"root-credentials has mode {mode:o}, want 600"
        dmode = stat.S_IMODE(data.stat().st_mode)
        assert dmode == 0o700, f"data dir has mode {dmode:o}, want 700"
        text = creds.read_text()
        sk = re.search(r'secret_key\s*=\s*"([^"]+)"', text)
        assert sk, "root-credentials names a secret_key"
        ak = re.search(r'access_key\s*=\s*"([^"]+)"', text).group(1)
        # the generated credentials work
        assert s.client((ak, sk.group(1))).list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        s.stop()

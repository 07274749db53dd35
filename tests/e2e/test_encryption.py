"""Encryption at rest through real clients: SSE-S3 by default, SSE-KMS with
the built-in KMS (AWS KMS API), bucket keys, DSSE-KMS, SSE-C, bucket
default encryption, quotas, master-key rotation and the audit log. Every
object written here carries MARKER so the last test can prove none of it
reached the disk in clear."""
import base64
import concurrent.futures
import hashlib
import json
import os
import subprocess
import tempfile
import uuid

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ALT, MAIN, Server, binary, error_of, free_port
from denial import bucket_state, denied, object_state

MARKER = b"STRONGROOM-PLAINTEXT-MARKER-7f3a"
PKG = 64 * 1024


def body(n: int, seed: int = 0) -> bytes:
    """n bytes: the marker repeated, salted so objects differ."""
    unit = MARKER + bytes([65 + seed % 26]) * 7
    return (unit * (n // len(unit) + 1))[:n]


@pytest.fixture(scope="module", params=["builtin-kms", "external-kms"])
def srv(request):
    """The server, with its built-in KMS or with moto's KMS server as an
    external AWS-KMS-compatible endpoint: the S3 tests run against both."""
    with tempfile.TemporaryDirectory(prefix="strongroom-enc-") as tmp:
        moto = None
        if request.param == "external-kms":
            port = free_port()
            moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_http(f"http://127.0.0.1:{port}/moto-api/")
            s = Server(os.path.join(tmp, "data"), extra_args=["--kms-endpoint", f"http://127.0.0.1:{port}"])
            s.kms_endpoint = f"http://127.0.0.1:{port}"
            s.start(env_extra={"STRONGROOM_KMS_ACCESS_KEY": "moto", "STRONGROOM_KMS_SECRET_KEY": "moto-secret"})
        else:
            s = Server(os.path.join(tmp, "data")).start()
            s.kms_endpoint = None
        try:
            yield s
        finally:
            s.stop()
            if moto:
                moto.terminate()
                moto.wait(timeout=10)


def test_external_kms_over_plain_http_off_this_machine_is_refused_at_start(tmp_path):
    """GenerateDataKey answers with plaintext data keys: an external KMS
    reached by plain http:// anywhere but a loopback address would carry
    them over the network in the clear, so the server will not start."""
    env = dict(os.environ, STRONGROOM_KMS_ACCESS_KEY="k", STRONGROOM_KMS_SECRET_KEY="s")
    for endpoint in ("http://10.0.0.5:5000", "http://kms.example.com"):
        r = subprocess.run([binary(), "serve", "--data-dir", str(tmp_path / "data"),
                            "--http", f"127.0.0.1:{free_port()}", "--https", f"127.0.0.1:{free_port()}",
                            "--admin", "off", "--website", "off", "--kms-endpoint", endpoint],
                           capture_output=True, text=True, timeout=30, env=env)
        assert r.returncode != 0
        assert "would carry data keys in the clear" in r.stderr, r.stderr[-2000:]


def wait_http(url):
    import time
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def builtin_only(srv):
    if srv.kms_endpoint:
        pytest.skip("exercises the built-in KMS's own API")


@pytest.fixture(scope="module")
def s3(srv):
    return srv.client()


@pytest.fixture(scope="module")
def s3s(srv):
    return srv.client(secure=True)


def kms_client(srv, creds=MAIN):
    """The KMS the server uses: its own API, or the external endpoint."""
    return boto3.client("kms", endpoint_url=getattr(srv, "kms_endpoint", None) or srv.http,
                        aws_access_key_id=creds[0],
                        aws_secret_access_key=creds[1], region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def kms(srv):
    return kms_client(srv)


@pytest.fixture()
def bucket(s3):
    name = f"enc-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


def sse_c(key: bytes, prefix="SSECustomer"):
    return {f"{prefix}Algorithm": "AES256", f"{prefix}Key": base64.b64encode(key).decode(),
            f"{prefix}KeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode()}


def key_state(kms, key_id):
    """A reader of a KMS key as its owner (`kms`) sees it: its metadata
    (state, enabled, usage), its policy and its rotation status."""
    def one(fn):
        try:
            out = fn()
        except ClientError as e:
            return ("error", e.response["Error"]["Code"])
        out.pop("ResponseMetadata", None)
        return out

    return lambda: (one(lambda: kms.describe_key(KeyId=key_id)),
                    one(lambda: kms.get_key_policy(KeyId=key_id, PolicyName="default")),
                    one(lambda: kms.get_key_rotation_status(KeyId=key_id)))


def ssec_state(client, bucket, key, customer_key):
    """A reader of an SSE-C object with its customer key: the owner's
    object_state cannot open it (every read without the key is refused)."""
    def read():
        try:
            got = client.get_object(Bucket=bucket, Key=key, **sse_c(customer_key))
        except ClientError as e:
            return ("error", e.response["Error"]["Code"])
        return (got["ETag"], got["ContentLength"], got.get("Metadata"),
                hashlib.sha256(got["Body"].read()).hexdigest())
    return read


def kms_calls(srv, op="GenerateDataKey") -> int:
    m = requests.get(f"http://127.0.0.1:{srv.admin_port}/metrics").text
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in m.splitlines()
               if line.startswith(f'strongroom_kms_requests_total{{operation="{op}"'))


SIZES = [0, 1, PKG - 1, PKG, PKG + 1, 5 * 1024 * 1024]


def test_sse_s3_is_the_default_and_round_trips_every_size(s3, bucket):
    """AWS encrypts every new object with SSE-S3 unless told otherwise."""
    for n in SIZES:
        data = body(n, n)
        put = s3.put_object(Bucket=bucket, Key=f"s3/{n}", Body=data)
        assert put["ServerSideEncryption"] == "AES256"
        assert put["ETag"].strip('"') == hashlib.md5(data).hexdigest(), "SSE-S3 ETag is the MD5 (AWS)"
        got = s3.get_object(Bucket=bucket, Key=f"s3/{n}")
        assert got["ServerSideEncryption"] == "AES256"
        assert got["Body"].read() == data
        assert s3.head_object(Bucket=bucket, Key=f"s3/{n}")["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize("mode", ["AES256", "aws:kms", "aws:kms:dsse", "SSE-C"])
def test_ranges_across_package_boundaries(s3s, bucket, mode):
    n = 3 * PKG + 123
    data = body(n, 3)
    extra = sse_c(b"k" * 32) if mode == "SSE-C" else {"ServerSideEncryption": mode}
    s3s.put_object(Bucket=bucket, Key="r", Body=data, **extra)
    get_extra = sse_c(b"k" * 32) if mode == "SSE-C" else {}
    for a, b in [(0, 0), (PKG - 1, PKG), (PKG - 5, 2 * PKG + 5), (3 * PKG, n - 1), (n - 1, n - 1), (10, n - 1)]:
        r = s3s.get_object(Bucket=bucket, Key="r", Range=f"bytes={a}-{b}", **get_extra)
        assert r["Body"].read() == data[a:b + 1], (mode, a, b)
        assert r["ContentRange"] == f"bytes {a}-{b}/{n}"


def test_sse_kms_default_key_named_key_alias_and_context(s3, kms, bucket, srv):
    put = s3.put_object(Bucket=bucket, Key="d", Body=body(100), ServerSideEncryption="aws:kms")
    assert put["SSEKMSKeyId"] == kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["Arn"], \
        "no key named: the account's AWS managed key aws/s3"
    if not srv.kms_endpoint:
        aliases = {a["AliasName"]: a for a in kms.list_aliases()["Aliases"]}
        assert "alias/aws/s3" in aliases, "the AWS managed key is created on first use"
        assert kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["KeyManager"] == "AWS"

    key = kms.create_key(Description="objects")["KeyMetadata"]
    kms.create_alias(AliasName="alias/objects-" + bucket, TargetKeyId=key["KeyId"])
    ctx = base64.b64encode(json.dumps({"project": "x"}).encode()).decode()
    for kid in (key["KeyId"], key["Arn"], "alias/objects-" + bucket):
        put = s3.put_object(Bucket=bucket, Key="n", Body=body(70000, 1), ServerSideEncryption="aws:kms",
                            SSEKMSKeyId=kid, SSEKMSEncryptionContext=ctx)
        assert put["SSEKMSKeyId"] == key["Arn"]
        assert put["ETag"].strip('"') != hashlib.md5(body(70000, 1)).hexdigest(), \
            "an SSE-KMS ETag is not the MD5 of the plaintext"
        got = s3.get_object(Bucket=bucket, Key="n")
        assert got["Body"].read() == body(70000, 1)
        assert got["ServerSideEncryption"] == "aws:kms" and got["SSEKMSKeyId"] == key["Arn"]

    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="x", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/nope")
    assert error_of(e) == (400, "KMS.NotFoundException")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="x", Body=b"x", SSEKMSKeyId=key["KeyId"])
    assert error_of(e) == (400, "InvalidArgument"), "a KMS key id needs x-amz-server-side-encryption: aws:kms"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="x", Body=b"x", ServerSideEncryption="AES512")
    assert error_of(e)[0] == 400
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="x")


def test_aws_cli_kms_commands_verbatim(srv, tmp_path):
    builtin_only(srv)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=MAIN[0], AWS_SECRET_ACCESS_KEY=MAIN[1], AWS_DEFAULT_REGION="us-east-1")

    def aws(*args):
        out = subprocess.run(["aws", "--endpoint-url", srv.http, "kms", *args, "--output", "json"],
                             env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    key = aws("create-key", "--description", "cli")["KeyMetadata"]
    assert key["KeyState"] == "Enabled" and key["Arn"].startswith("arn:aws:kms:us-east-1:210000000001:key/")
    dk = aws("generate-data-key", "--key-id", key["KeyId"], "--key-spec", "AES_256")
    assert len(base64.b64decode(dk["Plaintext"])) == 32
    (tmp_path / "pt").write_bytes(b"secret message")
    enc = aws("encrypt", "--key-id", key["KeyId"], "--plaintext", f"fileb://{tmp_path / 'pt'}",
              "--encryption-context", "purpose=test")
    (tmp_path / "ct").write_bytes(base64.b64decode(enc["CiphertextBlob"]))
    dec = aws("decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'ct'}", "--encryption-context", "purpose=test")
    assert base64.b64decode(dec["Plaintext"]) == b"secret message"
    assert dec["KeyId"] == key["Arn"]
    # the data key decrypts too, and the encryption context is authenticated
    (tmp_path / "dk").write_bytes(base64.b64decode(dk["CiphertextBlob"]))
    assert aws("decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'dk'}")["Plaintext"] == dk["Plaintext"]
    bad = subprocess.run(["aws", "--endpoint-url", srv.http, "kms", "decrypt", "--ciphertext-blob",
                          f"fileb://{tmp_path / 'ct'}", "--encryption-context", "purpose=other"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "InvalidCiphertextException" in bad.stderr


def test_kms_api_rejects_bad_signatures_and_unknown_keys(srv, kms):
    builtin_only(srv)
    wrong = boto3.client("kms", endpoint_url=srv.http, aws_access_key_id=MAIN[0],
                         aws_secret_access_key="x" * 40, region_name="us-east-1")
    # a listing names no key: watch the account's keys, as the owner lists them
    keys = lambda: sorted(k["KeyId"] for k in kms.list_keys()["Keys"])  # noqa: E731
    denied(lambda: wrong.list_keys(), watch=keys, want=(400, "InvalidSignatureException"))
    stranger = boto3.client("kms", endpoint_url=srv.http, aws_access_key_id="AKIANOBODY0000000000",
                            aws_secret_access_key="x" * 40, region_name="us-east-1")
    denied(lambda: stranger.list_keys(), watch=keys, want=(400, "UnrecognizedClientException"))
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=str(uuid.uuid4()))
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=b"\x01" + b"garbage" * 20)
    assert e.value.response["Error"]["Code"] == "InvalidCiphertextException"
    r = kms.generate_random(NumberOfBytes=64)
    assert len(r["Plaintext"]) == 64


def test_disabled_or_deleted_key_refuses_s3_reads_and_writes(srv, s3, kms, bucket):
    if srv.kms_endpoint:
        pytest.skip("moto's KMS does not enforce key state or rotation periods")
    key = kms.create_key()["KeyMetadata"]
    s3.put_object(Bucket=bucket, Key="k", Body=body(1000), ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
    kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert error_of(e) == (400, "KMS.DisabledException")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k2", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
    assert error_of(e) == (400, "KMS.DisabledException")
    kms.enable_key(KeyId=key["KeyId"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body(1000)
    d = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert d["KeyState"] == "PendingDeletion"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert error_of(e) == (400, "KMS.KMSInvalidStateException")
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key["KeyId"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body(1000)


def test_key_rotation_keeps_old_ciphertexts_readable(srv, s3, kms, bucket):
    if srv.kms_endpoint:
        pytest.skip("moto's KMS does not enforce key state or rotation periods")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key)
    st = kms.get_key_rotation_status(KeyId=key)
    assert st["KeyRotationEnabled"] is True and st["RotationPeriodInDays"] == 365
    s3.put_object(Bucket=bucket, Key="old", Body=body(5000, 1), ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    old_ct = kms.encrypt(KeyId=key, Plaintext=b"before rotation")["CiphertextBlob"]
    kms.rotate_key_on_demand(KeyId=key)
    new_ct = kms.encrypt(KeyId=key, Plaintext=b"after rotation")["CiphertextBlob"]
    assert old_ct[:41] != new_ct[:41], "new ciphertexts name the new key version"
    s3.put_object(Bucket=bucket, Key="new", Body=body(5000, 2), ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    assert kms.decrypt(CiphertextBlob=old_ct)["Plaintext"] == b"before rotation"
    assert kms.decrypt(CiphertextBlob=new_ct)["Plaintext"] == b"after rotation"
    assert s3.get_object(Bucket=bucket, Key="old")["Body"].read() == body(5000, 1)
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == body(5000, 2)
    assert len(kms.list_key_rotations(KeyId=key)["Rotations"]) == 1
    re = kms.re_encrypt(CiphertextBlob=old_ct, DestinationKeyId=key)
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"])["Plaintext"] == b"before rotation"


def test_key_policy_is_enforced(srv, s3, kms, bucket):
    builtin_only(srv)
    alt_kms = kms_client(srv, ALT)
    key = kms.create_key()["KeyMetadata"]
    ct = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    # another account cannot use the key under the default policy
    denied(lambda: alt_kms.decrypt(CiphertextBlob=ct), watch=key_state(kms, key["KeyId"]),
           want=(400, "AccessDeniedException"))
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    policy["Statement"].append({"Sid": "alt may decrypt", "Effect": "Allow",
                                "Principal": {"AWS": "arn:aws:iam::210000000002:root"},
                                "Action": "kms:Decrypt", "Resource": "*"})
    policy["Statement"].append({"Sid": "no direct decrypt of S3 data", "Effect": "Deny", "Principal": "*",
                                "Action": "kms:Decrypt", "Resource": "*",
                                "Condition": {"StringEquals": {"kms:EncryptionContext:tier": "gold"}}})
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    assert alt_kms.decrypt(CiphertextBlob=ct, KeyId=key["Arn"])["Plaintext"] == b"p"
    gold = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"g", EncryptionContext={"tier": "gold"})["CiphertextBlob"]
    # explicit deny wins
    denied(lambda: kms.decrypt(CiphertextBlob=gold, EncryptionContext={"tier": "gold"}),
           watch=key_state(kms, key["KeyId"]), want=(400, "AccessDeniedException"))
    # S3 refuses objects whose key the caller may not use
    deny_s3 = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210000000001:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "kms:GenerateDataKey", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}}]}
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(deny_s3))
    denied(lambda: s3.put_object(Bucket=bucket, Key="p", Body=b"x", ServerSideEncryption="aws:kms",
                                 SSEKMSKeyId=key["KeyId"]),
           watch=[bucket_state(s3, bucket, "p"), key_state(kms, key["KeyId"])])
    # a policy that would lock the caller out is refused (AWS's safety check)
    lockout = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210000000002:root"}, "Action": "kms:*", "Resource": "*"}]}
    with pytest.raises(ClientError) as e:
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(lockout))
    assert e.value.response["Error"]["Code"] == "MalformedPolicyDocumentException"
    with pytest.raises(ClientError) as e:
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy="{not json")
    assert e.value.response["Error"]["Code"] == "MalformedPolicyDocumentException"
    # CreateKey applies the same check to a policy given at creation; no key is made
    before = len(kms.list_keys()["Keys"])
    with pytest.raises(ClientError) as e:
        kms.create_key(Policy=json.dumps(lockout))
    assert e.value.response["Error"]["Code"] == "MalformedPolicyDocumentException"
    assert len(kms.list_keys()["Keys"]) == before
    made = kms.create_key(Policy=json.dumps(lockout), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    assert made["KeyState"] == "Enabled"


def test_dsse_kms_two_layers(s3, bucket):
    data = body(3 * PKG + 5, 4)
    put = s3.put_object(Bucket=bucket, Key="dsse", Body=data, ServerSideEncryption="aws:kms:dsse")
    assert put["ServerSideEncryption"] == "aws:kms:dsse"
    got = s3.get_object(Bucket=bucket, Key="dsse")
    assert got["Body"].read() == data and got["ServerSideEncryption"] == "aws:kms:dsse"
    assert "BucketKeyEnabled" not in got, "bucket keys do not apply to DSSE-KMS"


def test_sse_c_over_https(srv, s3, s3s, bucket):
    key, other = os.urandom(32), os.urandom(32)
    for n in SIZES:
        data = body(n, 5)
        put = s3s.put_object(Bucket=bucket, Key=f"c/{n}", Body=data, **sse_c(key))
        assert put["SSECustomerAlgorithm"] == "AES256"
        assert "ServerSideEncryption" not in put
        got = s3s.get_object(Bucket=bucket, Key=f"c/{n}", **sse_c(key))
        assert got["Body"].read() == data
        assert got["SSECustomerKeyMD5"] == sse_c(key)["SSECustomerKeyMD5"]
    assert s3s.head_object(Bucket=bucket, Key="c/1", **sse_c(key))["SSECustomerAlgorithm"] == "AES256"
    with pytest.raises(ClientError) as e:
        s3s.get_object(Bucket=bucket, Key="c/1", **sse_c(other))
    assert error_of(e)[0] == 400, "wrong key on GET: 400 (AWS, pinned by ceph/s3-tests)"
    # wrong key on HEAD: 403, bodiless (AWS documentation)
    denied(lambda: s3s.head_object(Bucket=bucket, Key="c/1", **sse_c(other)),
           watch=[object_state(s3s, bucket, "c/1"), ssec_state(s3s, bucket, "c/1", key)], want=(403, ""))
    with pytest.raises(ClientError) as e:
        s3s.get_object(Bucket=bucket, Key="c/1")
    assert error_of(e) == (400, "InvalidRequest")
    with pytest.raises(ClientError) as e:
        s3s.head_object(Bucket=bucket, Key="c/1")
    assert error_of(e)[0] == 400
    # a bad key MD5 or a short key is refused before anything is stored
    bad = sse_c(key)
    bad["SSECustomerKeyMD5"] = base64.b64encode(hashlib.md5(other).digest()).decode()
    with pytest.raises(ClientError) as e:
        s3s.put_object(Bucket=bucket, Key="c/bad", Body=b"x", **bad)
    assert error_of(e) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as e:
        s3s.put_object(Bucket=bucket, Key="c/bad", Body=b"x", **sse_c(b"short"))
    assert error_of(e) == (400, "InvalidArgument")
    # SSE-C over plain HTTP is refused (the key would travel in clear)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="c/http", Body=b"x", **sse_c(key))
    assert error_of(e) == (400, "InvalidRequest")
    with pytest.raises(ClientError):
        s3s.head_object(Bucket=bucket, Key="c/http", **sse_c(key))
    # the key itself never reaches the server's log
    log = srv.log_bytes()
    assert sse_c(key)["SSECustomerKey"].encode() not in log


def test_sse_c_through_a_trusted_tls_proxy(tmp_path):
    """X-Forwarded-Proto counts only from a configured proxy address."""
    s = Server(str(tmp_path / "data"), extra_args=["--trusted-proxy", "127.0.0.1"]).start()
    try:
        c = s.client()
        c.create_bucket(Bucket="proxied")
        c.meta.events.register("before-sign.s3.*", lambda request, **kw: request.headers.__setitem__(
            "X-Forwarded-Proto", "https"))
        key = os.urandom(32)
        c.put_object(Bucket="proxied", Key="k", Body=body(10), **sse_c(key))
        assert c.get_object(Bucket="proxied", Key="k", **sse_c(key))["Body"].read() == body(10)
    finally:
        s.stop()
    s = Server(str(tmp_path / "data")).start()
    try:
        c = s.client()
        c.meta.events.register("before-sign.s3.*", lambda request, **kw: request.headers.__setitem__(
            "X-Forwarded-Proto", "https"))
        with pytest.raises(ClientError) as e:
            c.put_object(Bucket="proxied", Key="k2", Body=b"x", **sse_c(os.urandom(32)))
        assert error_of(e) == (400, "InvalidRequest"), "an untrusted peer cannot claim HTTPS"
    finally:
        s.stop()


MODES = {
    "sse-s3": {"ServerSideEncryption": "AES256"},
    "sse-kms": {"ServerSideEncryption": "aws:kms"},
    "sse-kms-bucket-key": {"ServerSideEncryption": "aws:kms", "BucketKeyEnabled": True},
    "dsse": {"ServerSideEncryption": "aws:kms:dsse"},
    "sse-c": sse_c(b"m" * 32),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_multipart_in_every_mode(s3s, bucket, mode):
    create = MODES[mode]
    part_extra = create if mode == "sse-c" else {}
    part = 5 * 1024 * 1024
    data = body(2 * part + 1234, 6)
    up = s3s.create_multipart_upload(Bucket=bucket, Key="mp", **create)
    parts = []
    for i in range(3):
        chunk = data[i * part:(i + 1) * part]
        r = s3s.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=i + 1, Body=chunk,
                            **part_extra)
        parts.append({"PartNumber": i + 1, "ETag": r["ETag"]})
    if mode == "sse-c":
        with pytest.raises(ClientError) as e:
            s3s.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                          MultipartUpload={"Parts": parts}, **sse_c(b"w" * 32))
        assert error_of(e)[:2] == (400, "InvalidRequest"), "a key given on completion must be the upload's"
        with pytest.raises(ClientError):
            s3s.head_object(Bucket=bucket, Key="mp", **part_extra)
    # AWS needs the SSE-C headers on completion only when the upload uses a
    # checksum algorithm: the AWS CLI v2 (Debian's 2.9) and rclone send none
    done = s3s.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                         MultipartUpload={"Parts": parts})
    if mode != "sse-c":
        assert done["ServerSideEncryption"] == create["ServerSideEncryption"]
    got = s3s.get_object(Bucket=bucket, Key="mp", **part_extra)
    assert got["Body"].read() == data
    r = s3s.get_object(Bucket=bucket, Key="mp", Range=f"bytes={part - 10}-{part + 10}", **part_extra)
    assert r["Body"].read() == data[part - 10:part + 11]
    if mode == "sse-c":
        # every part of an SSE-C upload needs the key
        up = s3s.create_multipart_upload(Bucket=bucket, Key="mp2", **create)
        with pytest.raises(ClientError) as e:
            s3s.upload_part(Bucket=bucket, Key="mp2", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
        assert error_of(e)[0] == 400
        s3s.abort_multipart_upload(Bucket=bucket, Key="mp2", UploadId=up["UploadId"])
        with pytest.raises(ClientError) as e:
            s3s.get_object(Bucket=bucket, Key="mp")
        assert error_of(e)[0] == 400, "the completed object still needs its key"
        # with a checksum algorithm, the completion needs the key (AWS)
        up = s3s.create_multipart_upload(Bucket=bucket, Key="mp3", ChecksumAlgorithm="SHA256", **create)
        r = s3s.upload_part(Bucket=bucket, Key="mp3", UploadId=up["UploadId"], PartNumber=1, Body=b"x",
                            ChecksumAlgorithm="SHA256", **create)
        done_part = {"PartNumber": 1, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]}
        with pytest.raises(ClientError) as e:
            s3s.complete_multipart_upload(Bucket=bucket, Key="mp3", UploadId=up["UploadId"],
                                          MultipartUpload={"Parts": [done_part]})
        assert error_of(e)[:2] == (400, "InvalidRequest")
        s3s.complete_multipart_upload(Bucket=bucket, Key="mp3", UploadId=up["UploadId"],
                                      MultipartUpload={"Parts": [done_part]}, **create)
        assert s3s.get_object(Bucket=bucket, Key="mp3", **create)["Body"].read() == b"x"


def test_100_mib_multipart_sse_kms_with_aws_cli(srv, bucket, tmp_path):
    src = tmp_path / "big"
    with open(src, "wb") as f:
        for i in range(100):
            f.write(body(1024 * 1024, i))
    env = dict(os.environ, AWS_ACCESS_KEY_ID=MAIN[0], AWS_SECRET_ACCESS_KEY=MAIN[1], AWS_DEFAULT_REGION="us-east-1")
    up = subprocess.run(["aws", "--endpoint-url", srv.http, "s3", "cp", str(src), f"s3://{bucket}/big",
                         "--sse", "aws:kms"], env=env, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    down = subprocess.run(["aws", "--endpoint-url", srv.http, "s3", "cp", f"s3://{bucket}/big", str(tmp_path / "back")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    assert hashlib.sha256(src.read_bytes()).digest() == hashlib.sha256((tmp_path / "back").read_bytes()).digest()


def test_copy_between_modes(s3s, kms, bucket):
    k1, k2 = os.urandom(32), os.urandom(32)
    data = body(PKG * 2 + 7, 8)
    s3s.put_object(Bucket=bucket, Key="src", Body=data)
    kms_key = kms.create_key()["KeyMetadata"]
    r = s3s.copy_object(Bucket=bucket, Key="kms", CopySource={"Bucket": bucket, "Key": "src"},
                        ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key["KeyId"])
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == kms_key["Arn"]
    s3s.copy_object(Bucket=bucket, Key="c1", CopySource={"Bucket": bucket, "Key": "kms"}, **sse_c(k1))
    s3s.copy_object(Bucket=bucket, Key="c2", CopySource={"Bucket": bucket, "Key": "c1"},
                    **sse_c(k1, "CopySourceSSECustomer"), **sse_c(k2))
    with pytest.raises(ClientError):
        s3s.get_object(Bucket=bucket, Key="c2", **sse_c(k1))
    assert s3s.get_object(Bucket=bucket, Key="c2", **sse_c(k2))["Body"].read() == data
    # a copy names no encryption: the destination gets the bucket default (SSE-S3)
    r = s3s.copy_object(Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": "c2"},
                        **sse_c(k2, "CopySourceSSECustomer"))
    assert r["ServerSideEncryption"] == "AES256"
    assert s3s.get_object(Bucket=bucket, Key="plain")["Body"].read() == data
    # an SSE-C source needs its key
    with pytest.raises(ClientError) as e:
        s3s.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "c2"})
    assert error_of(e)[0] == 400
    # in-place copy changing the encryption re-encrypts
    r = s3s.copy_object(Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": "plain"},
                        ServerSideEncryption="aws:kms:dsse")
    assert r["ServerSideEncryption"] == "aws:kms:dsse"
    assert s3s.get_object(Bucket=bucket, Key="plain")["Body"].read() == data
    # UploadPartCopy from an SSE-C source into an SSE-KMS upload
    up = s3s.create_multipart_upload(Bucket=bucket, Key="upc", ServerSideEncryption="aws:kms")
    p = s3s.upload_part_copy(Bucket=bucket, Key="upc", UploadId=up["UploadId"], PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "c2"}, CopySourceRange="bytes=5-70000",
                             **sse_c(k2, "CopySourceSSECustomer"))
    s3s.complete_multipart_upload(Bucket=bucket, Key="upc", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p["CopyPartResult"]["ETag"]}]})
    got = s3s.get_object(Bucket=bucket, Key="upc")
    assert got["Body"].read() == data[5:70001] and got["ServerSideEncryption"] == "aws:kms"


def test_bucket_default_encryption(s3, kms, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_encryption(Bucket=bucket)
    assert error_of(e) == (404, "ServerSideEncryptionConfigurationNotFoundError")
    key = kms.create_key()["KeyMetadata"]
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["KeyId"]},
        "BucketKeyEnabled": True}]})
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["KeyId"]}
    assert rule["BucketKeyEnabled"] is True
    put = s3.put_object(Bucket=bucket, Key="d", Body=body(10))
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == key["Arn"]
    assert put["BucketKeyEnabled"] is True
    up = s3.create_multipart_upload(Bucket=bucket, Key="m")
    assert up["ServerSideEncryption"] == "aws:kms"
    s3.abort_multipart_upload(Bucket=bucket, Key="m", UploadId=up["UploadId"])
    # the request's own header wins over the default
    assert s3.put_object(Bucket=bucket, Key="s", Body=b"x", ServerSideEncryption="AES256")[
        "ServerSideEncryption"] == "AES256"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256", "KMSMasterKeyID": key["KeyId"]}}]})
    assert error_of(e) == (400, "InvalidArgument")
    s3.delete_bucket_encryption(Bucket=bucket)
    assert s3.put_object(Bucket=bucket, Key="after", Body=b"x")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == body(10)


def put_many(client, bucket, n, **extra):
    def one(i):
        try:
            client.put_object(Bucket=bucket, Key=f"many/{i}", Body=body(256, i), ServerSideEncryption="aws:kms",
                              **extra)
            return None
        except ClientError as e:
            return error_of(type("E", (), {"value": e})())
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(n)))


def test_bucket_key_makes_a_handful_of_kms_calls(srv, bucket):
    c = srv.client(max_pool_connections=16)
    before = kms_calls(srv)
    assert put_many(c, bucket, 1000, BucketKeyEnabled=True) == [None] * 1000
    with_bucket_key = kms_calls(srv) - before
    assert with_bucket_key <= 5, with_bucket_key
    before = kms_calls(srv)
    assert put_many(c, bucket, 1000) == [None] * 1000
    assert kms_calls(srv) - before == 1000
    # reads of bucket-key objects reuse the decrypted bucket key too
    before = kms_calls(srv, "Decrypt")
    for i in range(0, 1000, 50):
        assert c.get_object(Bucket=bucket, Key=f"many/{i}")["Body"].read() == body(256, i)
    assert kms_calls(srv, "Decrypt") - before == 20, "objects without bucket key each need a Decrypt"


def test_kms_quota_throttles_and_bucket_keys_stay_under_it(tmp_path):
    s = Server(str(tmp_path / "data"), extra_args=["--kms-rate-limit", "50"]).start()
    try:
        c = s.client(max_pool_connections=16)
        c.create_bucket(Bucket="quota")
        results = put_many(c, "quota", 300)
        assert (503, "SlowDown") in results, "a burst beyond 50 KMS requests/s is throttled"
        results = put_many(c, "quota", 300, BucketKeyEnabled=True)
        assert results == [None] * 300, "with a bucket key the burst stays under the quota"
        k = kms_client(s)

        def rnd(_):
            try:
                k.generate_random(NumberOfBytes=8)
                return None
            except ClientError as e:
                return e.response["Error"]["Code"]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(rnd, range(300)))
        assert "ThrottlingException" in codes, "the KMS API answers AWS's throttling error"
    finally:
        s.stop()


def test_master_key_file_mode_rotation_and_refusals(tmp_path):
    data = tmp_path / "data"
    s = Server(str(data)).start()
    keyring = data / "master.keys"
    try:
        assert oct(keyring.stat().st_mode & 0o777) == "0o600"
        c = s.client()
        c.create_bucket(Bucket="rot")
        c.put_object(Bucket="rot", Key="old", Body=body(100, 1))
        kid = kms_client(s).create_key()["KeyMetadata"]["KeyId"]
        c.put_object(Bucket="rot", Key="kms", Body=body(100, 3), ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
    finally:
        s.stop()
    out = subprocess.run([binary(), "admin", "rotate-master-key", "--data-dir", str(data)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = [line for line in keyring.read_text().splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2
    s = Server(str(data)).start()
    try:
        c = s.client()
        c.put_object(Bucket="rot", Key="new", Body=body(100, 2))
        assert c.get_object(Bucket="rot", Key="old")["Body"].read() == body(100, 1)
    finally:
        s.stop()
    # without the old key, the new object opens (sealed under the new key),
    # and so do SSE-KMS objects and the accounts: KMS key material and
    # account secrets were re-sealed under the new key at the restart
    keyring.write_text(lines[1] + "\n")
    s = Server(str(data)).start()
    try:
        c = s.client()
        assert c.get_object(Bucket="rot", Key="new")["Body"].read() == body(100, 2)
        assert c.get_object(Bucket="rot", Key="kms")["Body"].read() == body(100, 3)
        with pytest.raises(ClientError) as e:
            c.get_object(Bucket="rot", Key="old")
        assert error_of(e)[0] == 500
        # the re-wrap tool refuses to run beside a live server
        busy = subprocess.run([binary(), "admin", "rewrap-master-key", "--data-dir", str(data)],
                              capture_output=True, text=True, timeout=30)
        assert busy.returncode != 0
    finally:
        s.stop()
    # with both keys back, re-wrap every data key under the new one; then
    # the old key can go for good
    keyring.write_text(lines[0] + "\n" + lines[1] + "\n")
    out = subprocess.run([binary(), "admin", "rewrap-master-key", "--data-dir", str(data)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Re-wrapped the data keys of 1 objects" in out.stdout, out.stdout
    keyring.write_text(lines[1] + "\n")
    s = Server(str(data)).start()
    try:
        c = s.client()
        for k, seed in (("old", 1), ("new", 2), ("kms", 3)):
            assert c.get_object(Bucket="rot", Key=k)["Body"].read() == body(100, seed)
    finally:
        s.stop()
    keyring.chmod(0o644)
    bad = subprocess.run([binary(), "serve", "--data-dir", str(data), "--http", "127.0.0.1:0", "--https", "off",
                          "--admin", "off", "--website", "off"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "accessible to other users" in bad.stderr
    keyring.chmod(0o600)
    keyring.write_text("0" * 64 + "\n")
    bad = subprocess.run([binary(), "serve", "--data-dir", str(data), "--http", "127.0.0.1:0", "--https", "off",
                          "--admin", "off", "--website", "off"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "all-zero" in bad.stderr


def test_audit_log_records_kms_use_without_secrets(srv, kms):
    builtin_only(srv)
    key = kms.create_key()["KeyMetadata"]
    dk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"app": "audit"})
    with pytest.raises(ClientError):
        kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"app": "wrong"})
    out = subprocess.run([binary(), "audit", "--data-dir", srv.data_dir, "--key", key["KeyId"]],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in out.stdout.splitlines()]
    names = [r["eventName"] for r in recs]
    assert names[:3] == ["CreateKey", "GenerateDataKey", "Decrypt"], names
    gen = recs[1]
    assert gen["userIdentity"]["accountId"] == "210000000001"
    assert gen["requestParameters"]["encryptionContext"] == {"app": "audit"}
    assert recs[2]["errorCode"] == "InvalidCiphertextException"
    errors = subprocess.run([binary(), "audit", "--data-dir", srv.data_dir, "--errors", "--count"],
                            capture_output=True, text=True, timeout=30)
    assert int(errors.stdout) >= 1
    with open(os.path.join(srv.data_dir, "audit", "kms.jsonl"), "rb") as f:
        log = f.read()
    plaintext_b64 = base64.b64encode(dk["Plaintext"])
    assert plaintext_b64 not in log and dk["Plaintext"] not in log
    assert plaintext_b64 not in srv.log_bytes()


def test_blocked_encryption_types_refuse_sse_c(s3s, bucket):
    """BlockedEncryptionTypes (AWS, 2025): a bucket can refuse SSE-C writes."""
    key = os.urandom(32)
    s3s.put_object(Bucket=bucket, Key="before", Body=b"x", **sse_c(key))
    s3s.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
        "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]}}]})
    rule = s3s.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["BlockedEncryptionTypes"] == {"EncryptionType": ["SSE-C"]}
    for call in (lambda: s3s.put_object(Bucket=bucket, Key="c", Body=b"x", **sse_c(key)),
                 lambda: s3s.create_multipart_upload(Bucket=bucket, Key="m", **sse_c(key)),
                 lambda: s3s.copy_object(Bucket=bucket, Key="cp", CopySource={"Bucket": bucket, "Key": "before"},
                                         **sse_c(key, "CopySourceSSECustomer"), **sse_c(key))):
        denied(call, watch=[bucket_state(s3s, bucket, "c", "m", "cp"), ssec_state(s3s, bucket, "before", key)])
    # existing SSE-C objects stay readable; other modes still write
    assert s3s.get_object(Bucket=bucket, Key="before", **sse_c(key))["Body"].read() == b"x"
    assert s3s.put_object(Bucket=bucket, Key="s3", Body=b"x")["ServerSideEncryption"] == "AES256"
    s3s.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
        "BlockedEncryptionTypes": {"EncryptionType": ["NONE"]}}]})
    s3s.put_object(Bucket=bucket, Key="c", Body=b"x", **sse_c(key))
    with pytest.raises(ClientError) as e:
        s3s.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
            "BlockedEncryptionTypes": {"EncryptionType": ["aws:kms"]}}]})
    assert error_of(e) == (400, "InvalidArgument")
    # another account cannot read or change the configuration
    from conftest import ALT as alt
    other = boto3.client("s3", endpoint_url=s3s.meta.endpoint_url, aws_access_key_id=alt[0],
                         aws_secret_access_key=alt[1], region_name="us-east-1", verify=s3s._endpoint.http_session._verify)
    denied(lambda: other.get_bucket_encryption(Bucket=bucket), watch=bucket_state(s3s, bucket))
    denied(lambda: other.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}), watch=bucket_state(s3s, bucket))


def test_malformed_kms_and_sse_input_gets_aws_errors_not_crashes(srv, s3s, bucket):
    """Junk at the KMS API and in SSE headers: AWS errors, and the server
    keeps answering."""
    builtin_only(srv)
    import random
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    def kms_raw(target, payload: bytes):
        req = AWSRequest(method="POST", url=srv.http + "/", data=payload, headers={
            "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(Credentials(*MAIN), "kms", "us-east-1").add_auth(req)
        return requests.post(srv.http + "/", data=payload, headers=dict(req.headers), timeout=10)

    rng = random.Random(7)
    bodies = [b"", b"{", b"[]", b"null", b'{"KeyId": 5}', b'{"KeyId": "' + b"x" * 5000 + b'"}',
              b'{"CiphertextBlob": "!!!"}', b'{"CiphertextBlob": "AQ=="}', b'{"Plaintext": "' + b"A" * 8000 + b'"}',
              b'{"EncryptionContext": {"a": 1}}', b'{"NumberOfBytes": -1}', b'{"NumberOfBytes": 1e9}',
              b'{"Policy": "{}", "KeyId": "alias/none"}', b'{"AliasName": "../../etc", "TargetKeyId": "x"}']
    bodies += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(30)]
    ops = ["Decrypt", "Encrypt", "GenerateDataKey", "GenerateRandom", "CreateAlias", "PutKeyPolicy",
           "DescribeKey", "ReEncrypt", "TagResource", "ScheduleKeyDeletion", "Nope"]
    for b in bodies:
        for op in ops:
            r = kms_raw("TrentService." + op, b)
            assert 400 <= r.status_code < 500, (op, b[:40], r.status_code, r.text)
            assert "__type" in r.json()
    r = requests.post(srv.http + "/", data=b"{}", headers={"X-Amz-Target": "TrentService.ListKeys"}, timeout=10)
    assert r.status_code == 400 and r.json()["__type"] == "MissingAuthenticationTokenException"
    # junk SSE headers on S3 writes
    junk = [{"ServerSideEncryption": "rot13"},
            {"ServerSideEncryption": "aws:kms", "SSEKMSEncryptionContext": "not-base64!"},
            {"ServerSideEncryption": "aws:kms", "SSEKMSEncryptionContext": base64.b64encode(b"[1]").decode()},
            {"SSECustomerAlgorithm": "AES128", "SSECustomerKey": base64.b64encode(b"k" * 32).decode(),
             "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(b"k" * 32).digest()).decode()},
            {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "%%%", "SSECustomerKeyMD5": "%%%"}]
    for extra in junk:
        with pytest.raises(ClientError) as e:
            s3s.put_object(Bucket=bucket, Key="junk", Body=b"x", **extra)
        assert error_of(e)[0] == 400, extra
    with pytest.raises(ClientError):
        s3s.head_object(Bucket=bucket, Key="junk")
    assert kms_client(srv).list_keys()["Keys"] is not None


def test_sse_kms_needs_sigv4(srv, s3, bucket):
    """AWS serves SSE-KMS objects to SigV4 requests only."""
    v2 = srv.client(signature_version="s3")
    with pytest.raises(ClientError) as e:
        v2.put_object(Bucket=bucket, Key="v2", Body=b"x", ServerSideEncryption="aws:kms")
    assert error_of(e) == (400, "InvalidArgument")
    s3.put_object(Bucket=bucket, Key="kms-v4", Body=body(10), ServerSideEncryption="aws:kms")
    with pytest.raises(ClientError) as e:
        v2.get_object(Bucket=bucket, Key="kms-v4")
    assert error_of(e) == (400, "InvalidArgument")
    v2.put_object(Bucket=bucket, Key="s3-v2", Body=body(10))
    assert v2.get_object(Bucket=bucket, Key="s3-v2")["Body"].read() == body(10)


def test_zz_no_plaintext_reaches_the_disk(srv):
    """Runs last in this module: everything above wrote MARKER in every mode.
    Account secrets are sealed under the master key too."""
    hits = []
    for root, _, files in os.walk(srv.data_dir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                content = f.read()
            if MARKER in content or MAIN[1].encode() in content or ALT[1].encode() in content:
                hits.append(os.path.join(root, name))
    assert hits == []

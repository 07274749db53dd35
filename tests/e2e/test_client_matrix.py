"""The client matrix: common S3 clients, each with its defaults, through
the same life of a bucket — make it, small and multipart uploads, a
listing with prefix and delimiter, download and byte compare, a range
read, a server-side copy, SSE-KMS, SSE-C over HTTPS (single and
multipart), a pre-signed URL, sync twice (nothing re-sent the second
time), delete, remove the bucket. Where a client has no way to ask for
one of these, the test says so and checks the rest.

Clients: rclone and the AWS CLI v2 (Debian's) and the AWS SDK for JavaScript v3 (npm, pinned
in tests/e2e/js), installed by scripts/test.sh; s3cmd and MinIO's Python
SDK, pyarrow, s3fs + pandas (tests/requirements.txt). The AWS CLI v1,
boto3 and the AWS SDK for Rust are exercised by the rest of the suite."""
import base64
import hashlib
import json
import os
import subprocess

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from conftest import MAIN, Server

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(str(tmp_path_factory.mktemp("matrix") / "data")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def kms_key(srv):
    kms = boto3.client("kms", endpoint_url=srv.http, region_name="us-east-1",
                       aws_access_key_id=MAIN[0], aws_secret_access_key=MAIN[1])
    return kms.create_key()["KeyMetadata"]["Arn"]


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "src"
    (d / "dir").mkdir(parents=True)
    small = d / "dir" / "small.txt"
    small.write_bytes(b"hello matrix\n" * 10)
    big = d / "dir" / "big.bin"
    big.write_bytes(os.urandom(12 * MIB))
    (d / "other.txt").write_bytes(b"other\n")
    return d, small, big


def head(srv, bucket, key, **kw):
    s3 = srv.client(MAIN)
    return s3.head_object(Bucket=bucket, Key=key, **kw)


def same(a, b):
    return hashlib.sha256(open(a, "rb").read()).digest() == hashlib.sha256(open(b, "rb").read()).digest()


SSEC_KEY = bytes(range(32))


# ---------------------------------------------------------------- rclone

def rclone(srv, *args, secure=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(RCLONE_CONFIG="/dev/null",
               RCLONE_CONFIG_SR_TYPE="s3", RCLONE_CONFIG_SR_PROVIDER="Other",
               RCLONE_CONFIG_SR_ACCESS_KEY_ID=MAIN[0], RCLONE_CONFIG_SR_SECRET_ACCESS_KEY=MAIN[1],
               RCLONE_CONFIG_SR_REGION="us-east-1",
               RCLONE_CONFIG_SR_ENDPOINT=srv.https if secure else srv.http)
    extra = ["--ca-cert", srv.ca] if secure else []
    r = subprocess.run(["rclone", *extra, *args], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (args, r.stderr)
    return r


def test_rclone(srv, files, kms_key, tmp_path):
    src, small, big = files
    b = "matrix-rclone"
    rclone(srv, "mkdir", f"sr:{b}")
    rclone(srv, "copyto", str(small), f"sr:{b}/dir/small.txt")
    rclone(srv, "copyto", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", str(big), f"sr:{b}/dir/big.bin")
    assert "-" in head(srv, b, "dir/big.bin")["ETag"], "a multipart upload"
    # a listing with a delimiter: the prefix's entries, not deeper keys
    rclone(srv, "copyto", str(src / "other.txt"), f"sr:{b}/dir/sub/deep.txt")
    assert sorted(rclone(srv, "lsf", f"sr:{b}/dir").stdout.split()) == ["big.bin", "small.txt", "sub/"]
    out = tmp_path / "back.bin"
    rclone(srv, "copyto", f"sr:{b}/dir/big.bin", str(out))
    assert same(big, out)
    part = rclone(srv, "cat", "--offset", "100", "--count", "50", f"sr:{b}/dir/small.txt").stdout
    assert part.encode() == small.read_bytes()[100:150]
    rclone(srv, "copyto", f"sr:{b}/dir/small.txt", f"sr:{b}/copied/small.txt")
    assert head(srv, b, "copied/small.txt")["ContentLength"] == small.stat().st_size
    # SSE-KMS with a key of the built-in KMS
    rclone(srv, "copyto", "--s3-server-side-encryption", "aws:kms", "--s3-sse-kms-key-id", kms_key,
           str(small), f"sr:{b}/kms/small.txt")
    h = head(srv, b, "kms/small.txt")
    assert (h["ServerSideEncryption"], h["SSEKMSKeyId"]) == ("aws:kms", kms_key)
    # SSE-C over HTTPS, single and multipart, read back with the key
    ssec = ["--s3-sse-customer-algorithm", "AES256",
            "--s3-sse-customer-key-base64", base64.b64encode(SSEC_KEY).decode()]
    rclone(srv, "copyto", *ssec, str(small), f"sr:{b}/ssec/small.txt", secure=True)
    rclone(srv, "copyto", *ssec, "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", str(big),
           f"sr:{b}/ssec/big.bin", secure=True)
    rclone(srv, "copyto", *ssec, f"sr:{b}/ssec/big.bin", str(tmp_path / "ssec.bin"), secure=True)
    assert same(big, tmp_path / "ssec.bin")
    # a pre-signed URL
    url = rclone(srv, "link", "--expire", "1h", f"sr:{b}/dir/small.txt").stdout.strip()
    assert requests.get(url, timeout=30).content == small.read_bytes()
    # sync twice: the second sends nothing
    rclone(srv, "sync", str(src), f"sr:{b}/sync")
    second = rclone(srv, "sync", "-v", str(src), f"sr:{b}/sync")
    assert "Copied" not in second.stderr, second.stderr
    rclone(srv, "purge", f"sr:{b}")
    assert b not in [x["Name"] for x in srv.client(MAIN).list_buckets()["Buckets"]]


# ---------------------------------------------------------------- s3cmd

def s3cmd(srv, tmp_path, *args, secure=False):
    host = (srv.https if secure else srv.http).split("://", 1)[1]
    cfg = tmp_path / "s3cfg"
    cfg.write_text("\n".join([
        "[default]", f"access_key = {MAIN[0]}", f"secret_key = {MAIN[1]}",
        f"host_base = {host}", f"host_bucket = {host}", "bucket_location = us-east-1",
        f"use_https = {secure}", f"ca_certs_file = {srv.ca}", "check_ssl_certificate = True",
        "signature_v2 = False", ""]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    r = subprocess.run(["s3cmd", "-c", str(cfg), *args], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def test_s3cmd(srv, files, kms_key, tmp_path):
    """s3cmd has no SSE-C and no range read: those two are not asked."""
    src, small, big = files
    b = "matrix-s3cmd"
    s3cmd(srv, tmp_path, "mb", f"s3://{b}")
    s3cmd(srv, tmp_path, "put", str(small), f"s3://{b}/dir/small.txt")
    s3cmd(srv, tmp_path, "put", "--multipart-chunk-size-mb=5", str(big), f"s3://{b}/dir/big.bin")
    assert "-" in head(srv, b, "dir/big.bin")["ETag"]
    s3cmd(srv, tmp_path, "put", str(src / "other.txt"), f"s3://{b}/dir/sub/deep.txt")
    ls = s3cmd(srv, tmp_path, "ls", f"s3://{b}/dir/").stdout
    assert "DIR" in ls and f"s3://{b}/dir/sub/" in ls and f"s3://{b}/dir/big.bin" in ls
    assert "deep.txt" not in ls
    s3cmd(srv, tmp_path, "get", f"s3://{b}/dir/big.bin", str(tmp_path / "back.bin"))
    assert same(big, tmp_path / "back.bin")
    s3cmd(srv, tmp_path, "cp", f"s3://{b}/dir/small.txt", f"s3://{b}/copied/small.txt")
    assert head(srv, b, "copied/small.txt")["ContentLength"] == small.stat().st_size
    s3cmd(srv, tmp_path, "put", f"--server-side-encryption-kms-id={kms_key}", str(small), f"s3://{b}/kms/small.txt")
    h = head(srv, b, "kms/small.txt")
    assert (h["ServerSideEncryption"], h["SSEKMSKeyId"]) == ("aws:kms", kms_key)
    # over HTTPS too, with the server's certificate checked
    s3cmd(srv, tmp_path, "put", str(small), f"s3://{b}/tls/small.txt", secure=True)
    url = s3cmd(srv, tmp_path, "signurl", f"s3://{b}/dir/small.txt", "+3600").stdout.strip()
    assert requests.get(url, timeout=30).content == small.read_bytes()
    first = s3cmd(srv, tmp_path, "sync", f"{src}/", f"s3://{b}/sync/").stdout
    assert "upload:" in first
    second = s3cmd(srv, tmp_path, "sync", f"{src}/", f"s3://{b}/sync/").stdout
    assert "upload:" not in second, second
    # info reads the bucket's configurations (CORS, lifecycle, policy...):
    # answers, not NotImplemented
    info = s3cmd(srv, tmp_path, "info", f"s3://{b}")
    assert "501" not in info.stdout + info.stderr and "NotImplemented" not in info.stdout + info.stderr
    s3cmd(srv, tmp_path, "del", "--recursive", "--force", f"s3://{b}")
    s3cmd(srv, tmp_path, "rb", f"s3://{b}")


# ---------------------------------------------------------------- MinIO's Python SDK

def minio_client(srv, secure=False):
    import urllib3
    from minio import Minio
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=srv.ca) if secure else None
    host = (srv.https if secure else srv.http).split("://", 1)[1]
    return Minio(host, access_key=MAIN[0], secret_key=MAIN[1], secure=secure, region="us-east-1", http_client=http)


def test_minio_py(srv, files, kms_key, tmp_path):
    from minio.commonconfig import CopySource
    from minio.sse import SseCustomerKey, SseKMS
    src, small, big = files
    m = minio_client(srv)
    b = "matrix-minio"
    m.make_bucket(b)
    m.fput_object(b, "dir/small.txt", str(small))
    m.fput_object(b, "dir/big.bin", str(big), part_size=5 * MIB)
    assert "-" in head(srv, b, "dir/big.bin")["ETag"]
    m.fput_object(b, "dir/sub/deep.txt", str(src / "other.txt"))
    names = sorted(o.object_name for o in m.list_objects(b, prefix="dir/"))
    assert names == ["dir/big.bin", "dir/small.txt", "dir/sub/"]
    m.fget_object(b, "dir/big.bin", str(tmp_path / "back.bin"))
    assert same(big, tmp_path / "back.bin")
    r = m.get_object(b, "dir/small.txt", offset=100, length=50)
    assert r.read() == small.read_bytes()[100:150]
    r.close()
    m.copy_object(b, "copied/small.txt", CopySource(b, "dir/small.txt"))
    assert head(srv, b, "copied/small.txt")["ContentLength"] == small.stat().st_size
    m.fput_object(b, "kms/small.txt", str(small), sse=SseKMS(kms_key, {}))
    h = head(srv, b, "kms/small.txt")
    assert (h["ServerSideEncryption"], h["SSEKMSKeyId"]) == ("aws:kms", kms_key)
    tls = minio_client(srv, secure=True)
    key = SseCustomerKey(SSEC_KEY)
    tls.fput_object(b, "ssec/small.txt", str(small), sse=key)
    tls.fput_object(b, "ssec/big.bin", str(big), sse=key, part_size=5 * MIB)
    tls.fget_object(b, "ssec/big.bin", str(tmp_path / "ssec.bin"), ssec=key)
    assert same(big, tmp_path / "ssec.bin")
    url = m.presigned_get_object(b, "dir/small.txt")
    assert requests.get(url, timeout=30).content == small.read_bytes()
    # no sync in the SDK: a client-side one, by ETag, twice
    def sync():
        sent = 0
        have = {o.object_name: o.etag for o in m.list_objects(b, prefix="sync/", recursive=True)}
        for p in sorted(src.rglob("*")):
            if p.is_file():
                k = "sync/" + str(p.relative_to(src))
                if have.get(k) != hashlib.md5(p.read_bytes()).hexdigest():
                    m.fput_object(b, k, str(p), part_size=64 * MIB)
                    sent += 1
        return sent
    assert sync() == 3 and sync() == 0
    for o in list(m.list_objects(b, recursive=True)):
        m.remove_object(b, o.object_name)
    m.remove_bucket(b)
    assert not m.bucket_exists(b)


# ---------------------------------------------------------------- the AWS SDK for JavaScript v3

JS = os.path.join(os.path.dirname(__file__), "js")


def test_aws_sdk_js_v3(srv, files, kms_key):
    """@aws-sdk/client-s3 + lib-storage (multipart Upload) + the
    pre-signer, installed by scripts/test.sh from tests/e2e/js's lock file:
    the same life, in tests/e2e/js/matrix.mjs."""
    src, _, _ = files
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=MAIN[0], AWS_SECRET_ACCESS_KEY=MAIN[1], ENDPOINT=srv.http,
               ENDPOINT_TLS=srv.https, CA=srv.ca, KMS_KEY=kms_key, DIR=str(src))
    r = subprocess.run(["node", os.path.join(JS, "matrix.mjs")], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.stdout, r.stderr)


# ---------------------------------------------------------------- pyarrow, s3fs + pandas

def test_pyarrow_s3filesystem(srv, files, tmp_path):
    """pyarrow's S3FileSystem (the AWS SDK for C++ underneath): it has no
    SSE, pre-signing or sync; the rest of the life, and a Parquet dataset
    written and read back."""
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    src, small, big = files
    fs = pafs.S3FileSystem(access_key=MAIN[0], secret_key=MAIN[1], region="us-east-1", scheme="http",
                           endpoint_override=srv.http.split("://", 1)[1],
                           allow_bucket_creation=True, allow_bucket_deletion=True)
    b = "matrix-pyarrow"
    fs.create_dir(b)
    with fs.open_output_stream(f"{b}/dir/small.txt") as f:
        f.write(small.read_bytes())
    with fs.open_output_stream(f"{b}/dir/big.bin") as f:  # multipart beyond 5 MiB
        f.write(big.read_bytes())
    assert "-" in head(srv, b, "dir/big.bin")["ETag"]
    with fs.open_output_stream(f"{b}/dir/sub/deep.txt") as f:
        f.write(b"deep")
    listed = sorted(i.path for i in fs.get_file_info(pafs.FileSelector(f"{b}/dir", recursive=False)))
    assert listed == [f"{b}/dir/big.bin", f"{b}/dir/small.txt", f"{b}/dir/sub"]
    with fs.open_input_stream(f"{b}/dir/big.bin") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(big.read_bytes()).digest()
    with fs.open_input_file(f"{b}/dir/small.txt") as f:
        assert f.read_at(50, 100) == small.read_bytes()[100:150]
    fs.copy_file(f"{b}/dir/small.txt", f"{b}/copied/small.txt")
    assert head(srv, b, "copied/small.txt")["ContentLength"] == small.stat().st_size
    table = pa.table({"n": list(range(1000)), "s": [str(i) for i in range(1000)]})
    pq.write_to_dataset(table, f"{b}/table", filesystem=fs)
    assert pq.read_table(f"{b}/table", filesystem=fs).sort_by("n").equals(table)
    fs.delete_dir(b)
    assert b not in [x["Name"] for x in srv.client(MAIN).list_buckets()["Buckets"]]


def test_s3fs_and_pandas(srv, files, kms_key, tmp_path):
    """s3fs (aiobotocore) as pandas uses it: uploads (multipart), a
    delimiter listing, whole and ranged reads, a copy, SSE-KMS, a
    pre-signed URL, CSV and Parquet through pandas; SSE-C over HTTPS."""
    import pandas as pd
    import s3fs
    src, small, big = files
    opts = {"key": MAIN[0], "secret": MAIN[1], "client_kwargs": {"endpoint_url": srv.http, "region_name": "us-east-1"}}
    fs = s3fs.S3FileSystem(**opts)
    b = "matrix-s3fs"
    fs.mkdir(b)
    fs.put_file(str(small), f"{b}/dir/small.txt")
    with fs.open(f"{b}/dir/big.bin", "wb", block_size=5 * MIB) as f:
        f.write(big.read_bytes())
    assert "-" in head(srv, b, "dir/big.bin")["ETag"]
    fs.pipe(f"{b}/dir/sub/deep.txt", b"deep")
    fs.invalidate_cache()
    assert sorted(fs.ls(f"{b}/dir")) == [f"{b}/dir/big.bin", f"{b}/dir/small.txt", f"{b}/dir/sub"]
    fs.get_file(f"{b}/dir/big.bin", str(tmp_path / "back.bin"))
    assert same(big, tmp_path / "back.bin")
    assert fs.cat_file(f"{b}/dir/small.txt", start=100, end=150) == small.read_bytes()[100:150]
    fs.copy(f"{b}/dir/small.txt", f"{b}/copied/small.txt")
    assert head(srv, b, "copied/small.txt")["ContentLength"] == small.stat().st_size
    fs.put_file(str(small), f"{b}/kms/small.txt", ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key)
    h = head(srv, b, "kms/small.txt")
    assert (h["ServerSideEncryption"], h["SSEKMSKeyId"]) == ("aws:kms", kms_key)
    # SSE-C over HTTPS, single and multipart, the key on every call
    # botocore encodes the key (and its MD5) itself: the raw 32 bytes
    ssec = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSEC_KEY}
    tls = s3fs.S3FileSystem(key=MAIN[0], secret=MAIN[1], s3_additional_kwargs=ssec,
                            client_kwargs={"endpoint_url": srv.https, "region_name": "us-east-1", "verify": srv.ca})
    tls.pipe(f"{b}/ssec/small.txt", small.read_bytes())
    with tls.open(f"{b}/ssec/big.bin", "wb", block_size=5 * MIB) as f:
        f.write(big.read_bytes())
    assert tls.cat_file(f"{b}/ssec/big.bin") == big.read_bytes()
    with pytest.raises(ClientError):  # without the key: refused
        srv.client(MAIN, secure=True).get_object(Bucket=b, Key="ssec/small.txt")
    url = fs.url(f"{b}/dir/small.txt", expires=3600)
    assert requests.get(url, timeout=30).content == small.read_bytes()
    frame = pd.DataFrame({"n": range(100), "s": [f"row {i}" for i in range(100)]})
    frame.to_csv(f"s3://{b}/frames/f.csv", index=False, storage_options=opts)
    assert pd.read_csv(f"s3://{b}/frames/f.csv", storage_options=opts).equals(frame)
    frame.to_parquet(f"s3://{b}/frames/f.parquet", storage_options=opts)
    assert pd.read_parquet(f"s3://{b}/frames/f.parquet", storage_options=opts).equals(frame)
    fs.rm(b, recursive=True)
    assert b not in [x["Name"] for x in srv.client(MAIN).list_buckets()["Buckets"]]


# ---------------------------------------------------------------- the AWS CLI v2 (Debian's)

AWS2 = "/usr/bin/aws"


def aws2(srv, tmp_path, *args, secure=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=MAIN[0], AWS_SECRET_ACCESS_KEY=MAIN[1], AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-creds"))
    tls = ["--ca-bundle", srv.ca] if secure else []
    r = subprocess.run([AWS2, "--endpoint-url", srv.https if secure else srv.http, *tls, *args],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def test_aws_cli_v2(srv, files, kms_key, tmp_path):
    """Debian's AWS CLI v2 (2.9; installed by scripts/test.sh) — the CLI
    whose SSE-C multipart completion once failed here."""
    v = subprocess.run([AWS2, "--version"], capture_output=True, text=True).stdout
    assert v.startswith("aws-cli/2."), v
    src, small, big = files
    b = "matrix-aws2"
    aws2(srv, tmp_path, "s3", "mb", f"s3://{b}")
    aws2(srv, tmp_path, "s3", "cp", str(small), f"s3://{b}/dir/small.txt")
    aws2(srv, tmp_path, "s3", "cp", str(big), f"s3://{b}/dir/big.bin")  # 12 MiB: multipart by default
    assert "-" in head(srv, b, "dir/big.bin")["ETag"]
    aws2(srv, tmp_path, "s3", "cp", str(src / "other.txt"), f"s3://{b}/dir/sub/deep.txt")
    listed = json.loads(aws2(srv, tmp_path, "s3api", "list-objects-v2", "--bucket", b, "--prefix", "dir/",
                             "--delimiter", "/").stdout)
    assert [o["Key"] for o in listed["Contents"]] == ["dir/big.bin", "dir/small.txt"]
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["dir/sub/"]
    aws2(srv, tmp_path, "s3", "cp", f"s3://{b}/dir/big.bin", str(tmp_path / "back.bin"))
    assert same(big, tmp_path / "back.bin")
    aws2(srv, tmp_path, "s3api", "get-object", "--bucket", b, "--key", "dir/small.txt", "--range", "bytes=100-149",
         str(tmp_path / "range"))
    assert (tmp_path / "range").read_bytes() == small.read_bytes()[100:150]
    aws2(srv, tmp_path, "s3", "cp", f"s3://{b}/dir/small.txt", f"s3://{b}/copied/small.txt")
    assert head(srv, b, "copied/small.txt")["ContentLength"] == small.stat().st_size
    aws2(srv, tmp_path, "s3", "cp", "--sse", "aws:kms", "--sse-kms-key-id", kms_key, str(small),
         f"s3://{b}/kms/small.txt")
    h = head(srv, b, "kms/small.txt")
    assert (h["ServerSideEncryption"], h["SSEKMSKeyId"]) == ("aws:kms", kms_key)
    keyfile = tmp_path / "ssec.key"
    keyfile.write_bytes(SSEC_KEY)
    ssec = ["--sse-c", "AES256", "--sse-c-key", f"fileb://{keyfile}"]
    aws2(srv, tmp_path, "s3", "cp", *ssec, str(small), f"s3://{b}/ssec/small.txt", secure=True)
    aws2(srv, tmp_path, "s3", "cp", *ssec, str(big), f"s3://{b}/ssec/big.bin", secure=True)
    aws2(srv, tmp_path, "s3", "cp", *ssec, f"s3://{b}/ssec/big.bin", str(tmp_path / "ssec.bin"), secure=True)
    assert same(big, tmp_path / "ssec.bin")
    url = aws2(srv, tmp_path, "s3", "presign", f"s3://{b}/dir/small.txt", "--expires-in", "3600").stdout.strip()
    assert requests.get(url, timeout=30).content == small.read_bytes()
    first = aws2(srv, tmp_path, "s3", "sync", str(src), f"s3://{b}/sync/").stdout
    assert "upload:" in first
    second = aws2(srv, tmp_path, "s3", "sync", str(src), f"s3://{b}/sync/").stdout
    assert "upload:" not in second, second
    aws2(srv, tmp_path, "s3", "rb", "--force", f"s3://{b}")
    assert b not in [x["Name"] for x in srv.client(MAIN).list_buckets()["Buckets"]]

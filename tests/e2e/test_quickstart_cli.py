"""The README quickstart, verbatim through the AWS CLI: mb, cp of 1 KiB and
200 MiB (multipart), ls, presign + curl, rm, rb, over HTTP and HTTPS."""
import os
import subprocess
import uuid

import pytest

from conftest import ROOT


def aws(server, secure, *args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ROOT[0], AWS_SECRET_ACCESS_KEY=ROOT[1], AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    ep = ["--endpoint-url", server.https if secure else server.http]
    if secure:
        ep += ["--ca-bundle", server.ca]
    return subprocess.run(["aws", *ep, *args], env=env, check=check, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_quickstart(server, tmp_path, secure):
    b = f"quick-{uuid.uuid4().hex[:12]}"
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(1024))
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1024 * 1024))

    aws(server, secure, "s3", "mb", f"s3://{b}")
    aws(server, secure, "s3", "cp", str(small), f"s3://{b}/small.bin")
    aws(server, secure, "s3", "cp", str(big), f"s3://{b}/big.bin")
    listing = aws(server, secure, "s3", "ls", f"s3://{b}").stdout
    assert "small.bin" in listing and "209715200" in listing

    head = aws(server, secure, "s3api", "head-object", "--bucket", b, "--key", "big.bin").stdout
    assert '-' in head.split('"ETag"')[1].split("\n")[0], "a 200 MiB cp is a multipart upload"

    out = tmp_path / "back.bin"
    aws(server, secure, "s3", "cp", f"s3://{b}/big.bin", str(out))
    assert out.read_bytes() == big.read_bytes()

    url = aws(server, secure, "s3", "presign", f"s3://{b}/small.bin").stdout.strip()
    curl = ["curl", "-sf", url] + (["--cacert", server.ca] if secure else [])
    assert subprocess.run(curl, capture_output=True, check=True).stdout == small.read_bytes()

    aws(server, secure, "s3", "rm", f"s3://{b}/small.bin")
    aws(server, secure, "s3", "rm", f"s3://{b}/big.bin")
    aws(server, secure, "s3", "rb", f"s3://{b}")
    assert b not in aws(server, secure, "s3", "ls").stdout


def test_strongroom_presign_command(server, tmp_path):
    """`strongroom presign` makes a SigV4 URL that curl can use (GET and PUT)."""
    from conftest import binary
    b = f"presign-{uuid.uuid4().hex[:12]}"
    aws(server, False, "s3", "mb", f"s3://{b}")
    env = dict(os.environ, STRONGROOM_ROOT_ACCESS_KEY=ROOT[0], STRONGROOM_ROOT_SECRET_KEY=ROOT[1])
    put = subprocess.run([binary(), "presign", f"s3://{b}/k", "--method", "PUT", "--endpoint", server.http],
                         env=env, check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(["curl", "-sf", "-X", "PUT", "--data-binary", "hello", put], check=True)
    get = subprocess.run([binary(), "presign", f"s3://{b}/k", "--expires-in", "60", "--endpoint", server.http],
                         env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert "X-Amz-Expires=60" in get
    assert subprocess.run(["curl", "-sf", get], capture_output=True, check=True).stdout == b"hello"
    too_long = subprocess.run([binary(), "presign", f"s3://{b}/k", "--expires-in", "604801"], env=env,
                              capture_output=True, text=True)
    assert too_long.returncode != 0
    head = subprocess.run([binary(), "presign", f"s3://{b}/k", "--method", "HEAD", "--endpoint", server.http],
                          env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert subprocess.run(["curl", "-sf", "-I", head], capture_output=True).returncode == 0
    bad = subprocess.run([binary(), "presign", f"s3://{b}/k", "--method", "POST"], env=env, capture_output=True)
    assert bad.returncode != 0
    delete = subprocess.run([binary(), "presign", f"s3://{b}/k", "--method", "DELETE", "--endpoint", server.http],
                            env=env, check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(["curl", "-sf", "-X", "DELETE", delete], check=True)
    assert subprocess.run(["curl", "-sf", get], capture_output=True).returncode != 0
    aws(server, False, "s3", "rb", f"s3://{b}")

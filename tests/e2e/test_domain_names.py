"""--domain D over HTTPS, set up as a user would: /etc/hosts lines for D,
<bucket>.D and <account-id>.D (here bind-mounted in a private mount
namespace, so the machine's own /etc/hosts is untouched). The generated
certificate covers D and *.D, so the unmodified AWS CLI works
virtual-hosted style, and `aws s3control` (which sends to
<account-id>.<endpoint host>) reaches the server as S3 Control. Without
--domain the certificate does not cover D and the CLI refuses it."""
import os
import subprocess

from conftest import MAIN, Server

DOMAIN = "s3.strongroom.test"
ACCOUNT = "210000000001"
BUCKET = "vh-bucket"


def cli(tmp_path, server, *args):
    """The AWS CLI, as a user runs it, with the user's /etc/hosts lines."""
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {DOMAIN} {BUCKET}.{DOMAIN} {ACCOUNT}.{DOMAIN}\n")
    cfg = tmp_path / "aws-config"
    cfg.write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = virtual\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=MAIN[0], AWS_SECRET_ACCESS_KEY=MAIN[1], AWS_CONFIG_FILE=str(cfg),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    endpoint = f"https://{DOMAIN}:{server.https_port}"
    cmd = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
           'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
           "aws", "--endpoint-url", endpoint, "--ca-bundle", server.ca, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_virtual_hosted_style_and_s3control_with_the_aws_cli(tmp_path):
    s = Server(str(tmp_path / "data"), extra_args=["--domain", DOMAIN]).start()
    try:
        r = cli(tmp_path, s, "s3api", "create-bucket", "--bucket", BUCKET)
        assert r.returncode == 0, r.stderr
        src = tmp_path / "obj"
        src.write_bytes(os.urandom(4096))
        r = cli(tmp_path, s, "s3", "cp", str(src), f"s3://{BUCKET}/k")
        assert r.returncode == 0, r.stderr
        r = cli(tmp_path, s, "s3api", "get-object", "--bucket", BUCKET, "--key", "k", str(tmp_path / "back"))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "back").read_bytes() == src.read_bytes()
        # S3 Control at <account-id>.<endpoint host>: the account's Block
        # Public Access configuration, written and read back
        r = cli(tmp_path, s, "s3control", "put-public-access-block", "--account-id", ACCOUNT,
                "--public-access-block-configuration",
                "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=false")
        assert r.returncode == 0, r.stderr
        r = cli(tmp_path, s, "s3control", "get-public-access-block", "--account-id", ACCOUNT)
        assert r.returncode == 0, r.stderr
        assert '"RestrictPublicBuckets": false' in r.stdout and '"BlockPublicPolicy": true' in r.stdout, r.stdout
        # an S3 Control operation not built: NotImplemented from the server,
        # not a bucket read of a bucket named after the account
        r = cli(tmp_path, s, "s3control", "list-access-points", "--account-id", ACCOUNT)
        assert r.returncode != 0 and "NotImplemented" in r.stderr, r.stderr
    finally:
        s.stop()


def test_without_the_domain_the_certificate_does_not_cover_it(tmp_path):
    s = Server(str(tmp_path / "data")).start()
    try:
        r = cli(tmp_path, s, "s3api", "list-buckets")
        assert r.returncode != 0
        assert "SSL" in r.stderr or "certificate" in r.stderr, r.stderr
    finally:
        s.stop()

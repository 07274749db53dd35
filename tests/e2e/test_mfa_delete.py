"""MFA Delete through boto3: a virtual TOTP device of the account root
(`strongroom admin mfa-enable`), required to change MFA Delete, to suspend
versioning and to delete versions for good; codes are single-use and
failures lock the device for a while."""
import base64
import hashlib
import hmac
import struct
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from conftest import Server, binary, error_of
from denial import bucket_state, denied, object_state


def totp(secret: bytes, step: int) -> str:
    mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def test_rfc6238_vector_in_this_helper():
    assert totp(b"12345678901234567890", 59 // 30) == "287082"


def test_mfa_delete(tmp_path):
    data = tmp_path / "data"
    s = Server(str(data)).start()
    c = s.client()
    c.create_bucket(Bucket="mfa")
    c.put_bucket_versioning(Bucket="mfa", VersioningConfiguration={"Status": "Enabled"})
    # restating MFA Delete as Disabled where it is off needs no code (s3-tests)
    c.put_bucket_versioning(Bucket="mfa", VersioningConfiguration={"Status": "Enabled", "MFADelete": "Disabled"})
    v1 = c.put_object(Bucket="mfa", Key="k", Body=b"one")["VersionId"]
    v2 = c.put_object(Bucket="mfa", Key="k", Body=b"two")["VersionId"]
    s.stop()
    out = subprocess.run([binary(), "admin", "mfa-enable", "--data-dir", str(data), "--account", "210000000001"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    fields = dict(map(str.strip, line.strip().split(": ", 1)) for line in out.stdout.splitlines()
                  if line.startswith(("  serial:", "  secret:", "  uri:")))
    serial, secret = fields["serial"], base64.b32decode(fields["secret"] + "=" * (-len(fields["secret"]) % 8))
    assert fields["uri"].startswith("otpauth://totp/")
    assert "▀" in out.stdout or "█" in out.stdout or "▄" in out.stdout, "a QR code is printed"
    s = Server(str(data)).start()
    try:
        c = s.client()
        # keep clear of a step boundary so the three steps stay valid
        if time.time() % 30 > 20:
            time.sleep(30 - time.time() % 30 + 0.2)
        now = int(time.time()) // 30
        # codes of the previous, current and next step are all valid once each
        steps = iter([now - 1, now, now + 1])
        # the bucket (versioning and MFA Delete configuration, every version)
        # and both versions of k, retention and legal hold included
        watch = [bucket_state(c, "mfa", "k"), object_state(c, "mfa", "k", v1), object_state(c, "mfa", "k", v2)]
        denied(lambda: c.put_bucket_versioning(Bucket="mfa", VersioningConfiguration={
            "Status": "Enabled", "MFADelete": "Enabled"}), watch=watch)
        c.put_bucket_versioning(Bucket="mfa", MFA=f"{serial} {totp(secret, next(steps))}",
                                VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
        assert c.get_bucket_versioning(Bucket="mfa")["MFADelete"] == "Enabled"
        # lifecycle rules would delete versions without a code: AWS does not
        # support them on an MFA Delete bucket, and neither do we
        denied(lambda: c.put_bucket_lifecycle_configuration(Bucket="mfa", LifecycleConfiguration={"Rules": [
            {"ID": "r", "Filter": {}, "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]}),
               watch=watch, want=(409, "InvalidBucketState"))
        with pytest.raises(ClientError) as e:
            c.get_bucket_lifecycle_configuration(Bucket="mfa")
        assert error_of(e) == (404, "NoSuchLifecycleConfiguration")
        # enabling versioning and listing need no MFA; plain deletes add markers
        c.put_bucket_versioning(Bucket="mfa", VersioningConfiguration={"Status": "Enabled"})
        assert len(c.list_object_versions(Bucket="mfa")["Versions"]) == 2
        # permanent deletion and suspension need a fresh code
        denied(lambda: c.delete_object(Bucket="mfa", Key="k", VersionId=v1), watch=watch)
        denied(lambda: c.delete_objects(Bucket="mfa", Delete={"Objects": [{"Key": "k", "VersionId": v1}]}),
               watch=watch)
        denied(lambda: c.put_bucket_versioning(Bucket="mfa", VersioningConfiguration={"Status": "Suspended"}),
               watch=watch)
        code = totp(secret, next(steps))
        c.delete_object(Bucket="mfa", Key="k", VersionId=v1, MFA=f"{serial} {code}")
        # v1 is gone for good now: watch the bucket and v2
        watch = [bucket_state(c, "mfa", "k"), object_state(c, "mfa", "k", v2)]
        # a code is accepted once
        denied(lambda: c.delete_object(Bucket="mfa", Key="k", VersionId=v2, MFA=f"{serial} {code}"), watch=watch)
        # the serial must be the device's
        denied(lambda: c.delete_object(Bucket="mfa", Key="k", VersionId=v2,
                                       MFA=f"arn:aws:iam::1:mfa/x {totp(secret, now + 1)}"), watch=watch)
        c.put_bucket_versioning(Bucket="mfa", MFA=f"{serial} {totp(secret, next(steps))}",
                                VersioningConfiguration={"Status": "Suspended"})
        assert c.get_bucket_versioning(Bucket="mfa")["Status"] == "Suspended"
        assert [v["VersionId"] for v in c.list_object_versions(Bucket="mfa")["Versions"]] == [v2]
        # five wrong codes lock the device: then even a right code is refused
        for _ in range(5):
            denied(lambda: c.delete_object(Bucket="mfa", Key="k", VersionId=v2, MFA=f"{serial} 000000"), watch=watch)
        denied(lambda: c.delete_object(Bucket="mfa", Key="k", VersionId=v2, MFA=f"{serial} {totp(secret, now + 2)}"),
               watch=watch)
        assert c.get_object(Bucket="mfa", Key="k", VersionId=v2)["Body"].read() == b"two"
    finally:
        s.stop()


def test_another_principals_failures_do_not_lock_the_root_out(tmp_path):
    """A user allowed to delete versions who sends wrong codes locks only
    itself out; the account root's next right code still works. (Failures
    are counted per caller; other callers share a small budget a minute.)"""
    import json
    from test_access_matrix import iam_client, s3_client
    data = tmp_path / "data"
    s = Server(str(data)).start()
    c = s.client()
    c.create_bucket(Bucket="mfa2")
    c.put_bucket_versioning(Bucket="mfa2", VersioningConfiguration={"Status": "Enabled"})
    v1 = c.put_object(Bucket="mfa2", Key="k", Body=b"one")["VersionId"]
    v2 = c.put_object(Bucket="mfa2", Key="k", Body=b"two")["VersionId"]
    iam = iam_client(s, ("AKIAE2EMAIN000000001", "E2eMainSecretKey000000000000000000000001"))
    iam.create_user(UserName="mallory")
    iam.put_user_policy(UserName="mallory", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:DeleteObjectVersion", "s3:DeleteObject"],
                                                "Resource": "arn:aws:s3:::mfa2/*"}]}))
    k = iam.create_access_key(UserName="mallory")["AccessKey"]
    s.stop()
    out = subprocess.run([binary(), "admin", "mfa-enable", "--data-dir", str(data), "--account", "210000000001"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    fields = dict(map(str.strip, line.strip().split(": ", 1)) for line in out.stdout.splitlines()
                  if line.startswith(("  serial:", "  secret:")))
    serial, secret = fields["serial"], base64.b32decode(fields["secret"] + "=" * (-len(fields["secret"]) % 8))
    s = Server(str(data)).start()
    try:
        c = s.client()
        mallory = s3_client(s, (k["AccessKeyId"], k["SecretAccessKey"]))
        if time.time() % 30 > 20:
            time.sleep(30 - time.time() % 30 + 0.2)
        now = int(time.time()) // 30
        c.put_bucket_versioning(Bucket="mfa2", MFA=f"{serial} {totp(secret, now - 1)}",
                                VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
        # the bucket (every version, the MFA Delete configuration) and the version mallory names
        watch = [bucket_state(c, "mfa2", "k"), object_state(c, "mfa2", "k", v2)]
        for _ in range(6):
            denied(lambda: mallory.delete_object(Bucket="mfa2", Key="k", VersionId=v2, MFA=f"{serial} 000000"),
                   watch=watch)
        # mallory is locked out now, even with a right code
        denied(lambda: mallory.delete_object(Bucket="mfa2", Key="k", VersionId=v2,
                                             MFA=f"{serial} {totp(secret, now + 1)}"), watch=watch)
        # the root is not
        c.delete_object(Bucket="mfa2", Key="k", VersionId=v1, MFA=f"{serial} {totp(secret, now)}")
        assert [v["VersionId"] for v in c.list_object_versions(Bucket="mfa2")["Versions"]] == [v2]
    finally:
        s.stop()

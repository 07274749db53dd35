"""Object Lock (WORM) through boto3: every attempt to get around COMPLIANCE
is refused with AWS's errors and the data stays byte-exact; GOVERNANCE
gives way only to the bypass header; a legal hold blocks on its own;
retention expires (short retentions, real clock)."""
import datetime
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import error_of
from denial import ACCESS_DENIED, bucket_state, denied, object_state


def until(seconds):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)


@pytest.fixture()
def lbucket(s3):
    name = f"lock-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def test_lock_bucket_is_versioned_for_good(s3, lbucket):
    assert s3.get_bucket_versioning(Bucket=lbucket)["Status"] == "Enabled"
    denied(lambda: s3.put_bucket_versioning(Bucket=lbucket, VersioningConfiguration={"Status": "Suspended"}),
           watch=bucket_state(s3, lbucket), want=(409, "InvalidBucketState"))
    cfg = s3.get_object_lock_configuration(Bucket=lbucket)["ObjectLockConfiguration"]
    assert cfg["ObjectLockEnabled"] == "Enabled"
    # lock headers on a bucket without Object Lock are refused
    plain = f"plain-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=plain)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=plain, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=until(60))
    assert error_of(e) == (400, "InvalidRequest")
    with pytest.raises(ClientError) as e:
        s3.get_object_lock_configuration(Bucket=plain)
    assert error_of(e) == (404, "ObjectLockConfigurationNotFoundError")


def test_compliance_cannot_be_bypassed(s3, lbucket):
    data = b"regulated record " * 1000
    v = s3.put_object(Bucket=lbucket, Key="rec", Body=data, ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=until(4))["VersionId"]
    deadline = time.monotonic() + 3.5
    head = s3.head_object(Bucket=lbucket, Key="rec")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    # each attempt, with the refusal AWS gives it
    attempts = {
        "delete version": (lambda: s3.delete_object(Bucket=lbucket, Key="rec", VersionId=v), ACCESS_DENIED),
        "delete version with bypass": (lambda: s3.delete_object(Bucket=lbucket, Key="rec", VersionId=v,
                                                                BypassGovernanceRetention=True), ACCESS_DENIED),
        "shorten": (lambda: s3.put_object_retention(Bucket=lbucket, Key="rec", VersionId=v, Retention={
            "Mode": "COMPLIANCE", "RetainUntilDate": until(1)}), ACCESS_DENIED),
        "switch to governance": (lambda: s3.put_object_retention(
            Bucket=lbucket, Key="rec", VersionId=v, BypassGovernanceRetention=True,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until(3600)}), ACCESS_DENIED),
        "remove": (lambda: s3.put_object_retention(Bucket=lbucket, Key="rec", VersionId=v,
                                                   BypassGovernanceRetention=True, Retention={}), ACCESS_DENIED),
        "delete bucket": (lambda: s3.delete_bucket(Bucket=lbucket), (409, "BucketNotEmpty")),
    }

    def delete_objects():
        # DeleteObjects answers 200 and refuses the key inside: the per-key
        # error is the refusal (403 AccessDenied as a single delete)
        r = s3.delete_objects(Bucket=lbucket, BypassGovernanceRetention=True,
                              Delete={"Objects": [{"Key": "rec", "VersionId": v}]})
        assert not r.get("Deleted"), r
        return 403, r["Errors"][0]["Code"]
    attempts["delete objects with bypass"] = (delete_objects, ACCESS_DENIED)
    # the version (bytes, retention, legal hold) and the bucket's versions and
    # lock configuration; the retention is only seconds long, so the bucket is
    # read without its other configurations (none of these requests names one)
    watch = [object_state(s3, lbucket, "rec", v), bucket_state(s3, lbucket, "rec", configs=False),
             lambda: s3.get_object_lock_configuration(Bucket=lbucket)["ObjectLockConfiguration"]]
    for name, (attempt, want) in attempts.items():
        assert time.monotonic() < deadline, f"{name}: the retention may have run out before this attempt"
        try:
            denied(attempt, watch=watch, want=want)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
    # overwriting (a new version) and a plain delete (a marker) leave it intact
    s3.put_object(Bucket=lbucket, Key="rec", Body=b"other")
    s3.copy_object(Bucket=lbucket, Key="rec", CopySource={"Bucket": lbucket, "Key": "rec"},
                   MetadataDirective="REPLACE")
    up = s3.create_multipart_upload(Bucket=lbucket, Key="rec")
    p = s3.upload_part(Bucket=lbucket, Key="rec", UploadId=up["UploadId"], PartNumber=1, Body=b"mp")
    s3.complete_multipart_upload(Bucket=lbucket, Key="rec", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
    s3.delete_object(Bucket=lbucket, Key="rec")
    assert s3.get_object(Bucket=lbucket, Key="rec", VersionId=v)["Body"].read() == data
    # extending is allowed
    s3.put_object_retention(Bucket=lbucket, Key="rec", VersionId=v,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until(6)})
    ret = s3.get_object_retention(Bucket=lbucket, Key="rec", VersionId=v)["Retention"]
    assert ret["Mode"] == "COMPLIANCE"
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=lbucket, Key="rec", VersionId=v)
    time.sleep(7)
    # expired: now it goes
    s3.delete_object(Bucket=lbucket, Key="rec", VersionId=v)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=lbucket, Key="rec", VersionId=v)
    assert error_of(e) == (404, "NoSuchVersion")


def test_governance_gives_way_only_to_the_bypass(s3, lbucket):
    v = s3.put_object(Bucket=lbucket, Key="g", Body=b"gov", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=until(3600))["VersionId"]
    # the version (bytes, retention, legal hold) and the bucket's versions and configurations
    watch = [object_state(s3, lbucket, "g", v), bucket_state(s3, lbucket, "g")]
    denied(lambda: s3.delete_object(Bucket=lbucket, Key="g", VersionId=v), watch=watch)
    denied(lambda: s3.put_object_retention(Bucket=lbucket, Key="g", VersionId=v,
                                           Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until(60)}),
           watch=watch)
    # even GOVERNANCE -> COMPLIANCE needs the bypass (AWS)
    denied(lambda: s3.put_object_retention(Bucket=lbucket, Key="g", VersionId=v,
                                           Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until(3600)}),
           watch=watch)
    s3.put_object_retention(Bucket=lbucket, Key="g", VersionId=v, BypassGovernanceRetention=True,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until(60)})
    s3.delete_object(Bucket=lbucket, Key="g", VersionId=v, BypassGovernanceRetention=True)


def test_legal_hold_and_default_retention(s3, lbucket):
    v = s3.put_object(Bucket=lbucket, Key="h", Body=b"held", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=lbucket, Key="h")["LegalHold"]["Status"] == "ON"
    denied(lambda: s3.delete_object(Bucket=lbucket, Key="h", VersionId=v, BypassGovernanceRetention=True),
           watch=[object_state(s3, lbucket, "h", v), bucket_state(s3, lbucket, "h")])
    s3.put_object_legal_hold(Bucket=lbucket, Key="h", VersionId=v, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=lbucket, Key="h", VersionId=v)
    s3.put_object_lock_configuration(Bucket=lbucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    rule = s3.get_object_lock_configuration(Bucket=lbucket)["ObjectLockConfiguration"]["Rule"]
    assert rule["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}
    v = s3.put_object(Bucket=lbucket, Key="d", Body=b"default")["VersionId"]
    assert s3.get_object_retention(Bucket=lbucket, Key="d", VersionId=v)["Retention"]["Mode"] == "GOVERNANCE"
    up = s3.create_multipart_upload(Bucket=lbucket, Key="mp", ObjectLockMode="COMPLIANCE",
                                    ObjectLockRetainUntilDate=until(3600))
    p = s3.upload_part(Bucket=lbucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"m")
    mv = s3.complete_multipart_upload(Bucket=lbucket, Key="mp", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})["VersionId"]
    assert s3.get_object_retention(Bucket=lbucket, Key="mp", VersionId=mv)["Retention"]["Mode"] == "COMPLIANCE"
    denied(lambda: s3.delete_object(Bucket=lbucket, Key="mp", VersionId=mv, BypassGovernanceRetention=True),
           watch=[object_state(s3, lbucket, "mp", mv), bucket_state(s3, lbucket, "mp")])


def test_startup_reports_damaged_locked_data(tmp_path):
    """Beyond AWS: a locked version whose blob went missing or changed size
    is reported at start-up."""
    import os

    from conftest import Server
    data = tmp_path / "data"
    s = Server(str(data)).start()
    try:
        c = s.client()
        c.create_bucket(Bucket="worm", ObjectLockEnabledForBucket=True)
        c.put_object(Bucket="worm", Key="big", Body=os.urandom(300_000), ObjectLockMode="COMPLIANCE",
                     ObjectLockRetainUntilDate=until(3600))
    finally:
        s.stop()
    blobs = [os.path.join(r, f) for r, _, fs in os.walk(data / "blobs") for f in fs]
    assert len(blobs) == 1
    with open(blobs[0], "r+b") as f:
        f.truncate(1000)
    s = Server(str(data)).start()
    s.stop()
    with open(s.log_path) as f:
        log = f.read()
    assert "WARNING: 1 locked object versions are damaged" in log
    assert "worm/big@" in log

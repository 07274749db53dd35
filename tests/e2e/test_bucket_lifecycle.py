"""S3 Lifecycle configuration, as AWS: Put/Get/DeleteBucketLifecycleConfiguration
with AWS's validation and errors, s3:PutLifecycleConfiguration /
s3:GetLifecycleConfiguration enforced, the x-amz-expiration header on PUT,
HEAD and GET, and the rules applied for real by the server (here with
--lifecycle-day-seconds 1: a day is a second) — never removing a locked
version."""
import datetime
import re
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import ALT, MAIN, Server, error_of
from denial import bucket_state, denied


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(str(tmp_path_factory.mktemp("lc") / "data"),
               extra_args=["--lifecycle-day-seconds", "1"]).start()
    yield s
    s.stop()


def uid():
    return uuid.uuid4().hex[:8]


def new_bucket(s3, **kw):
    name = f"lc-{uid()}"
    s3.create_bucket(Bucket=name, **kw)
    return name


def put_rules(s3, b, rules):
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": rules})


def refused(s3, b, rules):
    with pytest.raises(ClientError) as e:
        put_rules(s3, b, rules)
    return error_of(e)


def eventually(check, timeout=20):
    deadline = time.time() + timeout
    while True:
        if check():
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.5)


# ---------------------------------------------------------------- configuration

def test_configuration_round_trip_generated_ids_and_delete(srv):
    s3 = srv.client(MAIN)
    b = new_bucket(s3)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=b)
    assert error_of(e) == (404, "NoSuchLifecycleConfiguration")
    rules = [
        {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 31}},
        {"Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "k", "Value": "v"}],
                            "ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 1000}},
         "Status": "Disabled", "Expiration": {"Date": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)}},
        {"ID": "old", "Filter": {}, "Status": "Enabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 5, "NewerNoncurrentVersions": 2},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}},
        {"ID": "cold", "Prefix": "archive/", "Status": "Enabled",
         "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]},
        {"ID": "markers", "Filter": {"Prefix": ""}, "Status": "Enabled",
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]
    put_rules(s3, b, rules)
    got = s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    assert [r.get("ID") for r in got][0] == "logs"
    assert got[1]["ID"], "a rule sent without an ID gets one"
    assert got[1]["Filter"]["And"]["Tags"] == [{"Key": "k", "Value": "v"}]
    assert got[1]["Expiration"]["Date"].year == 2030
    assert got[2]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 5, "NewerNoncurrentVersions": 2}
    assert got[2]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 3}
    assert got[3]["Prefix"] == "archive/" and got[3]["Transitions"][0]["StorageClass"] == "GLACIER"
    assert got[4]["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    r = s3.delete_bucket_lifecycle(Bucket=b)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=b)
    assert error_of(e) == (404, "NoSuchLifecycleConfiguration")


@pytest.mark.parametrize("rules,want", [
    ([{"ID": "x" * 256, "Prefix": "", "Status": "Enabled", "Expiration": {"Days": 1}}], (400, "InvalidArgument")),
    ([{"ID": "a", "Prefix": "p", "Status": "Enabled", "Expiration": {"Days": 1}},
      {"ID": "a", "Prefix": "q", "Status": "Enabled", "Expiration": {"Days": 1}}], (400, "InvalidArgument")),
    ([{"ID": "a", "Prefix": "", "Status": "enabled", "Expiration": {"Days": 1}}], (400, "MalformedXML")),
    ([{"ID": "a", "Prefix": "", "Status": "Enabled", "Expiration": {"Days": 0}}], (400, "InvalidArgument")),
    # botocore reads "20200101" as epoch seconds: not at midnight
    ([{"ID": "a", "Prefix": "", "Status": "Enabled", "Expiration": {"Date": "20200101"}}], (400, "InvalidArgument")),
    ([{"ID": "a", "Prefix": "", "Status": "Enabled", "Expiration": {"Days": 1, "ExpiredObjectDeleteMarker": True}}],
     (400, "MalformedXML")),
    ([{"ID": "a", "Prefix": "p", "Filter": {"Prefix": "p"}, "Status": "Enabled", "Expiration": {"Days": 1}}],
     (400, "MalformedXML")),
    ([{"ID": "a", "Filter": {"Prefix": "p", "ObjectSizeGreaterThan": 5}, "Status": "Enabled",
       "Expiration": {"Days": 1}}], (400, "MalformedXML")),
    ([{"ID": "a", "Filter": {"Prefix": "p"}, "Status": "Enabled"}], (400, "InvalidRequest")),
    ([{"ID": "a", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Status": "Enabled",
       "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}], (400, "InvalidRequest")),
    ([{"ID": "a", "Filter": {}, "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 0}}],
     (400, "InvalidArgument")),
], ids=["id-too-long", "same-id", "bad-status", "zero-days", "date-not-midnight", "days-and-marker",
        "prefix-and-filter", "two-filters", "no-action", "abort-with-tags", "zero-noncurrent-days"])
def test_invalid_configurations_are_refused_and_change_nothing(srv, rules, want):
    s3 = srv.client(MAIN)
    b = new_bucket(s3)
    put_rules(s3, b, [{"ID": "kept", "Prefix": "k/", "Status": "Enabled", "Expiration": {"Days": 7}}])
    assert refused(s3, b, rules) == want
    got = s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    assert [r["ID"] for r in got] == ["kept"]


def test_lifecycle_configuration_needs_its_permissions(srv):
    """Another account's root, not granted anything: AccessDenied for all
    three, and the owner's configuration unchanged."""
    s3 = srv.client(MAIN)
    b = new_bucket(s3)
    put_rules(s3, b, [{"ID": "kept", "Prefix": "", "Status": "Enabled", "Expiration": {"Days": 7}}])
    other = srv.client(ALT)
    for call in (lambda: other.get_bucket_lifecycle_configuration(Bucket=b),
                 lambda: put_rules(other, b, [{"ID": "evil", "Prefix": "", "Status": "Enabled",
                                               "Expiration": {"Days": 1}}]),
                 lambda: other.delete_bucket_lifecycle(Bucket=b)):
        denied(call, watch=bucket_state(s3, b))
    assert [r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]] == ["kept"]


def test_expiration_header_on_put_head_and_get(srv):
    """x-amz-expiration names the earliest matching rule and the expiry in
    real days, rounded up to midnight UTC (whatever the testing day)."""
    s3 = srv.client(MAIN)
    b = new_bucket(s3)
    put_rules(s3, b, [
        {"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 3}},
        {"ID": "tagged", "Filter": {"Tag": {"Key": "ttl", "Value": "short"}}, "Status": "Enabled",
         "Expiration": {"Days": 1}},
        {"ID": "off", "Filter": {"Prefix": ""}, "Status": "Disabled", "Expiration": {"Days": 1}},
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    pat = re.compile(r'^expiry-date="(.+)", rule-id="(.+)"$')

    def header(r):
        h = r["ResponseMetadata"]["HTTPHeaders"].get("x-amz-expiration")
        if h is None:
            return None
        m = pat.match(h)
        assert m, h
        when = datetime.datetime.strptime(m.group(1), "%a, %d %b %Y %H:%M:%S GMT").replace(
            tzinfo=datetime.timezone.utc)
        return when, m.group(2)

    when, rule = header(s3.put_object(Bucket=b, Key="tmp/a", Body=b"x"))
    assert rule == "tmp" and (when.hour, when.minute, when.second) == (0, 0, 0)
    assert (when - now).days == 3
    assert header(s3.head_object(Bucket=b, Key="tmp/a")) == (when, "tmp")
    assert header(s3.get_object(Bucket=b, Key="tmp/a")) == (when, "tmp")
    # the tag rule expires sooner: it names the earliest
    r = s3.put_object(Bucket=b, Key="tmp/t", Body=b"x", Tagging="ttl=short")
    assert header(r)[1] == "tagged"
    # no enabled rule selects it
    assert header(s3.put_object(Bucket=b, Key="keep/a", Body=b"x")) is None


# ---------------------------------------------------------------- rules applied

def keys(s3, b):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b).get("Contents", []))


def test_expiration_removes_matching_objects_of_an_unversioned_bucket(srv):
    s3 = srv.client(MAIN)
    b = new_bucket(s3)
    put_rules(s3, b, [{"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 2}},
                      {"ID": "big", "Filter": {"ObjectSizeGreaterThan": 100}, "Status": "Enabled",
                       "Expiration": {"Days": 2}}])
    for k in ("tmp/a", "tmp/b", "keep/a", "keep/b"):
        s3.put_object(Bucket=b, Key=k, Body=b"x")
    s3.put_object(Bucket=b, Key="keep/big", Body=b"x" * 200)
    assert eventually(lambda: keys(s3, b) == ["keep/a", "keep/b"]), keys(s3, b)
    # still there a few days later
    time.sleep(3)
    assert keys(s3, b) == ["keep/a", "keep/b"]


def test_versioned_bucket_expiry_makes_markers_and_never_removes_a_locked_version(srv):
    """Expiration puts a delete marker over the current version; the
    noncurrent versions then go after NoncurrentDays — except one under a
    legal hold, which stays, readable by its version id."""
    s3 = srv.client(MAIN)
    b = new_bucket(s3, ObjectLockEnabledForBucket=True)
    held = s3.put_object(Bucket=b, Key="k", Body=b"held", ObjectLockLegalHoldStatus="ON")["VersionId"]
    free = s3.put_object(Bucket=b, Key="k", Body=b"free")["VersionId"]
    put_rules(s3, b, [{"ID": "all", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 2},
                       "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}])

    def versions():
        r = s3.list_object_versions(Bucket=b)
        return ([v["VersionId"] for v in r.get("Versions", [])],
                [(m["VersionId"], m["IsLatest"]) for m in r.get("DeleteMarkers", [])])

    def settled():
        vs, markers = versions()
        return vs == [held] and len(markers) == 1 and markers[0][1]
    assert eventually(settled, timeout=30), versions()
    assert free not in versions()[0]
    assert s3.get_object(Bucket=b, Key="k", VersionId=held)["Body"].read() == b"held"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k")
    assert error_of(e)[0] == 404
    s3.put_object_legal_hold(Bucket=b, Key="k", VersionId=held, LegalHold={"Status": "OFF"})


def test_noncurrent_versions_past_the_newest_kept_go_over_several_commits(srv):
    """NoncurrentVersionExpiration with NewerNoncurrentVersions 3 on a key
    with 250 versions: the current version and the 3 newest noncurrent
    ones stay, the other 246 go (more than one commit's 100 actions, each
    commit reading the key's versions once and keeping that list true to
    its own removals); a key with one noncurrent version keeps it."""
    s3 = srv.client(MAIN)
    b = new_bucket(s3)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    ids = [s3.put_object(Bucket=b, Key="k", Body=str(i).encode())["VersionId"] for i in range(250)]
    others = [s3.put_object(Bucket=b, Key="other", Body=x)["VersionId"] for x in (b"a", b"b")]
    put_rules(s3, b, [{"ID": "old", "Filter": {}, "Status": "Enabled",
                       "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 3}}])

    def left(key):
        return [v["VersionId"] for p in s3.get_paginator("list_object_versions").paginate(Bucket=b, Prefix=key)
                for v in p.get("Versions", []) if v["Key"] == key]
    assert eventually(lambda: len(left("k")) == 4, timeout=30), len(left("k"))
    time.sleep(2)  # a later pass removes nothing more
    assert left("k") == ids[::-1][:4]
    assert left("other") == others[::-1]
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"249"


def test_incomplete_multipart_uploads_are_aborted_and_lone_delete_markers_removed(srv):
    s3 = srv.client(MAIN)
    b = new_bucket(s3)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    up = s3.create_multipart_upload(Bucket=b, Key="up/big")["UploadId"]
    s3.upload_part(Bucket=b, Key="up/big", UploadId=up, PartNumber=1, Body=b"x" * 1024)
    other = s3.create_multipart_upload(Bucket=b, Key="other/big")["UploadId"]
    s3.delete_object(Bucket=b, Key="gone")  # a delete marker, the key's only version
    put_rules(s3, b, [
        {"ID": "up", "Filter": {"Prefix": "up/"}, "Status": "Enabled",
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        {"ID": "markers", "Filter": {"Prefix": "gone"}, "Status": "Enabled",
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ])

    def uploads():
        return sorted(u["UploadId"] for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", []))

    def markers():
        return s3.list_object_versions(Bucket=b).get("DeleteMarkers", [])
    assert eventually(lambda: uploads() == [other] and not markers()), (uploads(), markers())
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=b, Key="up/big", UploadId=up)
    assert error_of(e) == (404, "NoSuchUpload")
    s3.abort_multipart_upload(Bucket=b, Key="other/big", UploadId=other)


def test_a_disabled_or_distant_rule_removes_nothing(srv):
    s3 = srv.client(MAIN)
    b = new_bucket(s3)
    put_rules(s3, b, [{"ID": "off", "Filter": {}, "Status": "Disabled", "Expiration": {"Days": 1}}])
    s3.put_object(Bucket=b, Key="a", Body=b"x")
    time.sleep(4)
    assert keys(s3, b) == ["a"]
    put_rules(s3, b, [{"ID": "later", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 100}}])
    time.sleep(3)
    assert keys(s3, b) == ["a"]

"""Buckets (naming, ownership, emptiness) and listings (v1, v2, versions)."""
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ALT, error_of
from denial import bucket_state, denied


def test_bucket_lifecycle_and_ownership(server, s3):
    name = f"life-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.head_bucket(Bucket=name)
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    listed = s3.list_buckets()
    assert name in [b["Name"] for b in listed["Buckets"]]
    assert listed["Owner"]["DisplayName"] == "e2e-main" and len(listed["Owner"]["ID"]) == 64
    alt = server.client(ALT)
    assert name not in [b["Name"] for b in alt.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as e:
        alt.create_bucket(Bucket=name)
    assert error_of(e) == (409, "BucketAlreadyExists")
    # another account's reads and writes are refused and leave the bucket as
    # it was: no "x" written, the bucket not deleted (HEAD's 403 has no body)
    for call, want in ((lambda: alt.head_bucket(Bucket=name), (403, "")),
                       (lambda: alt.list_objects_v2(Bucket=name), (403, "AccessDenied")),
                       (lambda: alt.put_object(Bucket=name, Key="x", Body=b"x"), (403, "AccessDenied")),
                       (lambda: alt.delete_bucket(Bucket=name), (403, "AccessDenied"))):
        denied(call, want=want, watch=bucket_state(s3, name, "x"))
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert error_of(e) == (409, "BucketNotEmpty")
    s3.delete_object(Bucket=name, Key="k")
    s3.create_multipart_upload(Bucket=name, Key="pending")  # aborted with the bucket
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert error_of(e)[0] == 404


def test_request_payment_is_the_bucket_owners(server, s3, bucket):
    """GetBucketRequestPayment answers BucketOwner as AWS does for a bucket
    without Requester Pays (s3cmd info and the AWS CLI ask); setting
    Requester Pays is not offered (501) and changes nothing; another
    account is refused; a missing bucket is NoSuchBucket."""
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "BucketOwner"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"})
    assert error_of(e) == (501, "NotImplemented")
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "BucketOwner"
    denied(lambda: server.client(ALT).get_bucket_request_payment(Bucket=bucket),
           watch=[bucket_state(s3, bucket), lambda: s3.get_bucket_request_payment(Bucket=bucket)["Payer"]])
    with pytest.raises(ClientError) as e:
        s3.get_bucket_request_payment(Bucket=f"none-{uuid.uuid4().hex[:10]}")
    assert error_of(e) == (404, "NoSuchBucket")


@pytest.mark.parametrize("name", ["ab", "UPPER", "has_underscore", "-lead", "192.168.1.1", "a" * 64, "dots..twice"])
def test_bucket_naming_rules(s3, name):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert error_of(e) == (400, "InvalidBucketName")


def test_location_constraint(s3):
    name = f"loc-{uuid.uuid4().hex[:12]}"
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    assert error_of(e) == (400, "InvalidLocationConstraint")


def test_list_buckets_prefix_and_continuation(server):
    c = server.client(ALT)
    names = [f"pg-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
    for n in names:
        c.create_bucket(Bucket=n)
    first = c.list_buckets(MaxBuckets=2, Prefix="pg-")
    assert len(first["Buckets"]) == 2 and "ContinuationToken" in first
    rest = c.list_buckets(MaxBuckets=2, Prefix="pg-", ContinuationToken=first["ContinuationToken"])
    got = [b["Name"] for b in first["Buckets"] + rest["Buckets"]]
    assert sorted(got) == sorted(names)
    for n in names:
        c.delete_bucket(Bucket=n)


@pytest.fixture()
def tree(s3, bucket):
    keys = ["a/1", "a/2", "a/b/3", "b/4", "c", "d%e", "é/x"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    return bucket, keys


def test_list_v2_delimiter_prefix_and_pages(s3, tree):
    bucket, keys = tree
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "b/", "é/"]
    assert [o["Key"] for o in r["Contents"]] == ["c", "d%e"]
    assert r["KeyCount"] == 5
    r = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/b/"]
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=bucket, MaxKeys=2, **kw)
        seen += [o["Key"] for o in r.get("Contents", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert seen == sorted(keys, key=str.encode)
    r = s3.list_objects_v2(Bucket=bucket, StartAfter="b/4")
    assert [o["Key"] for o in r["Contents"]] == ["c", "d%e", "é/x"]
    r = s3.list_objects_v2(Bucket=bucket, FetchOwner=True, MaxKeys=1)
    assert r["Contents"][0]["Owner"]["DisplayName"] == "e2e-main"
    assert "Owner" not in s3.list_objects_v2(Bucket=bucket, MaxKeys=1)["Contents"][0]


def test_list_v1_markers(s3, tree):
    bucket, keys = tree
    r = s3.list_objects(Bucket=bucket, MaxKeys=3)
    assert r["IsTruncated"] and [o["Key"] for o in r["Contents"]] == ["a/1", "a/2", "a/b/3"]
    r = s3.list_objects(Bucket=bucket, Marker="a/b/3")
    assert [o["Key"] for o in r["Contents"]] == ["b/4", "c", "d%e", "é/x"]
    r = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=1)
    assert r["IsTruncated"] and r["NextMarker"] == "a/"
    r = s3.list_objects(Bucket=bucket, Delimiter="/", Marker="a/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/", "é/"]


def test_list_encoding_type_url(s3, tree):
    bucket, _ = tree
    raw = s3._make_api_call  # noqa: SLF001 - boto3 decodes url encoding itself; check the wire
    import requests
    url = s3.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket, "EncodingType": "url", "Prefix": "d"})
    body = requests.get(url).text
    assert "<Key>d%25e</Key>" in body
    assert raw


def test_list_object_versions_of_unversioned_bucket(s3, tree):
    bucket, keys = tree
    r = s3.list_object_versions(Bucket=bucket)
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in r["Versions"]] == [(k, "null", True) for k in sorted(keys, key=str.encode)]
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") is None


def test_max_keys_bounds(s3, tree):
    bucket, _ = tree
    r = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert r["KeyCount"] == 0 and not r["IsTruncated"]
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=bucket, MaxKeys=-1)
    assert error_of(e)[0] == 400

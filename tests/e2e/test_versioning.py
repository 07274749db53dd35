"""Versioning through boto3: version ids, the null version, delete markers,
reads and permanent deletes by version id, ListObjectVersions, and a
property test of random operation sequences against a simple model."""
import random
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import error_of


@pytest.fixture()
def vbucket(s3):
    name = f"ver-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


def versions(s3, bucket, **kw):
    out = s3.list_object_versions(Bucket=bucket, **kw)
    return out.get("Versions", []), out.get("DeleteMarkers", [])


def paged_versions(s3, bucket, **kw):
    """(key, version id) of every version, page by page, each page resumed
    at the last one's NextKeyMarker / NextVersionIdMarker."""
    seen = []
    while True:
        page = s3.list_object_versions(Bucket=bucket, **kw)
        seen += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
        if not page["IsTruncated"]:
            return seen
        kw.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])


def test_enable_put_get_delete_marker_and_permanent_delete(s3, vbucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=vbucket)
    s3.put_object(Bucket=vbucket, Key="k", Body=b"before")  # becomes the null version
    s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=vbucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=vbucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=vbucket, Key="k", Body=b"two")["VersionId"]
    assert len({v1, v2, "null"}) == 3
    got = s3.get_object(Bucket=vbucket, Key="k")
    assert got["Body"].read() == b"two" and got["VersionId"] == v2
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId="null")["Body"].read() == b"before"
    assert s3.head_object(Bucket=vbucket, Key="k", VersionId=v1)["VersionId"] == v1
    vs, dms = versions(s3, vbucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in vs] == [(v2, True), (v1, False), ("null", False)]
    assert dms == []
    # a delete without version id adds a delete marker
    d = s3.delete_object(Bucket=vbucket, Key="k")
    assert d["DeleteMarker"] is True
    marker = d["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="k")
    assert error_of(e) == (404, "NoSuchKey")
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    # tags of one version
    s3.put_object_tagging(Bucket=vbucket, Key="k", VersionId=v1, Tagging={"TagSet": [{"Key": "t", "Value": "1"}]})
    assert s3.get_object_tagging(Bucket=vbucket, Key="k", VersionId=v1)["TagSet"] == [{"Key": "t", "Value": "1"}]
    assert s3.get_object_tagging(Bucket=vbucket, Key="k", VersionId=v2)["TagSet"] == []
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert error_of(e)[0] == 405
    assert s3.list_objects_v2(Bucket=vbucket).get("KeyCount") == 0
    vs, dms = versions(s3, vbucket)
    assert [d["VersionId"] for d in dms] == [marker] and dms[0]["IsLatest"] is True
    assert all(not v["IsLatest"] for v in vs)
    # removing the marker brings v2 back; removing v2 makes v1 current
    r = s3.delete_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert r["VersionId"] == marker and r["DeleteMarker"] is True
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"two"
    s3.delete_object(Bucket=vbucket, Key="k", VersionId=v2)
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"one"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="k", VersionId=v2)
    assert error_of(e) == (404, "NoSuchVersion")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=vbucket, Key="k", VersionId="not-a-version")
    assert error_of(e) == (400, "InvalidArgument")
    # a bucket with versions left is not empty
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=vbucket)
    assert error_of(e) == (409, "BucketNotEmpty")
    for v in versions(s3, vbucket)[0]:
        s3.delete_object(Bucket=vbucket, Key="k", VersionId=v["VersionId"])
    s3.delete_bucket(Bucket=vbucket)


def test_suspended_writes_the_null_version(s3, vbucket):
    s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=vbucket, Key="k", Body=b"one")["VersionId"]
    s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=vbucket)["Status"] == "Suspended"
    assert "VersionId" not in s3.put_object(Bucket=vbucket, Key="k", Body=b"n1"), \
        "a write to a suspended bucket answers without a version id (AWS)"
    s3.put_object(Bucket=vbucket, Key="k", Body=b"n2")  # replaces the null version
    vs, _ = versions(s3, vbucket)
    assert [v["VersionId"] for v in vs] == ["null", v1]
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId="null")["Body"].read() == b"n2"
    d = s3.delete_object(Bucket=vbucket, Key="k")
    assert d["VersionId"] == "null" and d["DeleteMarker"] is True
    vs, dms = versions(s3, vbucket)
    assert [v["VersionId"] for v in vs] == [v1] and [m["VersionId"] for m in dms] == ["null"]


def test_versions_in_multipart_copy_delete_objects_and_listing_pages(s3, vbucket):
    s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Enabled"})
    up = s3.create_multipart_upload(Bucket=vbucket, Key="mp")
    p = s3.upload_part(Bucket=vbucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"m" * 100)
    done = s3.complete_multipart_upload(Bucket=vbucket, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
    assert done["VersionId"]
    src1 = s3.put_object(Bucket=vbucket, Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket=vbucket, Key="src", Body=b"second")
    c = s3.copy_object(Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "src", "VersionId": src1})
    assert c["CopySourceVersionId"] == src1 and c["VersionId"]
    assert s3.get_object(Bucket=vbucket, Key="dst")["Body"].read() == b"first"
    # copy onto itself in a versioned bucket: a new version with its own data
    s3.copy_object(Bucket=vbucket, Key="src", CopySource={"Bucket": vbucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"a": "b"})
    s3.delete_object(Bucket=vbucket, Key="src", VersionId=s3.list_object_versions(
        Bucket=vbucket, Prefix="src")["Versions"][1]["VersionId"])
    assert s3.get_object(Bucket=vbucket, Key="src")["Body"].read() == b"second"
    for i in range(5):
        s3.put_object(Bucket=vbucket, Key=f"p/{i % 2}", Body=str(i).encode())
    seen = paged_versions(s3, vbucket, Prefix="p/", MaxKeys=2)
    assert len(seen) == 5 and len(set(seen)) == 5
    assert [k for k, _ in seen] == sorted(k for k, _ in seen)
    folded = s3.list_object_versions(Bucket=vbucket, Delimiter="/")
    assert [c["Prefix"] for c in folded["CommonPrefixes"]] == ["p/"]
    # DeleteObjects with and without version ids
    all_p = s3.list_object_versions(Bucket=vbucket, Prefix="p/")["Versions"]
    r = s3.delete_objects(Bucket=vbucket, Delete={"Objects": [
        {"Key": "p/0", "VersionId": all_p[0]["VersionId"]}, {"Key": "p/1"}]})
    by_key = {d["Key"]: d for d in r["Deleted"]}
    assert by_key["p/1"]["DeleteMarker"] is True and by_key["p/1"]["DeleteMarkerVersionId"]
    assert "DeleteMarker" not in by_key["p/0"]


def test_version_pages_resume_at_every_marker_including_null(s3, vbucket):
    """ListObjectVersions resumes after (KeyMarker, VersionIdMarker) wherever
    the marker falls: a version id is found by the sequence number it names
    (one read, however many versions the key has), `null` by a scan; the
    pages of one version each add up to the whole listing. A version id of
    another key is not a marker of this one: 400 InvalidArgument, as AWS
    answers an unknown VersionIdMarker."""
    s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=vbucket, Key="n", Body=b"1")
    s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=vbucket, Key="n", Body=b"null")
    s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Enabled"})
    for b in (b"3", b"4"):
        s3.put_object(Bucket=vbucket, Key="n", Body=b)
    other = [s3.put_object(Bucket=vbucket, Key="o", Body=b)["VersionId"] for b in (b"5", b"6")]
    whole = [(v["Key"], v["VersionId"]) for v in s3.list_object_versions(Bucket=vbucket)["Versions"]]
    assert [k for k, _ in whole] == ["n"] * 4 + ["o"] * 2 and whole[2] == ("n", "null")
    seen = paged_versions(s3, vbucket, MaxKeys=1)
    assert seen == whole
    with pytest.raises(ClientError) as e:
        s3.list_object_versions(Bucket=vbucket, KeyMarker="n", VersionIdMarker=other[0])
    assert error_of(e) == (400, "InvalidArgument")


def test_random_sequences_match_a_model(s3, vbucket):
    """put / delete / delete-version / suspend / enable on one key, checked
    against a model of AWS's rules after every step."""
    rng = random.Random(20261127)
    model = []  # newest first: dicts {vid, marker, body}
    state = None
    for step in range(120):
        op = rng.choice(["put", "put", "delete", "delete_version", "suspend", "enable"])
        if op == "enable":
            if state is None:
                model = [dict(v, vid="null") for v in model]
            s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Enabled"})
            state = "Enabled"
        elif op == "suspend" and state is not None:
            s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Suspended"})
            state = "Suspended"
        elif op == "put":
            data = f"body-{step}".encode()
            r = s3.put_object(Bucket=vbucket, Key="k", Body=data)
            if state is None:
                model = [{"vid": None, "marker": False, "body": data}]
            else:
                if state == "Suspended":
                    model = [v for v in model if v["vid"] != "null"]
                model.insert(0, {"vid": r.get("VersionId", "null"), "marker": False, "body": data})
                assert ("VersionId" in r) == (state == "Enabled")
        elif op == "delete":
            r = s3.delete_object(Bucket=vbucket, Key="k")
            if state is None:
                model = []
            else:
                if state == "Suspended":
                    model = [v for v in model if v["vid"] != "null"]
                model.insert(0, {"vid": r["VersionId"], "marker": True, "body": None})
        elif op == "delete_version" and state is not None and model:
            victim = rng.choice(model)
            s3.delete_object(Bucket=vbucket, Key="k", VersionId=victim["vid"])
            model.remove(victim)
        # compare the visible state and the version list
        current = model[0] if model and not model[0]["marker"] else None
        if current is None:
            with pytest.raises(ClientError):
                s3.get_object(Bucket=vbucket, Key="k")
        else:
            assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == current["body"], step
        if state is not None:
            page = s3.list_object_versions(Bucket=vbucket)
            listed = sorted(
                [(v["VersionId"], False) for v in page.get("Versions", [])]
                + [(d["VersionId"], True) for d in page.get("DeleteMarkers", [])])
            assert listed == sorted((v["vid"], v["marker"]) for v in model), step

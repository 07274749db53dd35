"""Object operations through boto3 (default settings: checksums on), with
the AWS status and error code of every refusal."""
import base64
import datetime
import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from conftest import error_of
from denial import bucket_state, denied


def test_put_get_roundtrip_keeps_metadata_and_representation_headers(s3, bucket):
    expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    s3.put_object(Bucket=bucket, Key="doc.txt", Body=b"hello world", ContentType="text/plain",
                  ContentEncoding="identity", ContentDisposition="attachment; filename=doc.txt",
                  ContentLanguage="en", CacheControl="max-age=60", Expires=expires,
                  Metadata={"color": "blue", "Mixed-Case": "v"})
    r = s3.get_object(Bucket=bucket, Key="doc.txt")
    assert r["Body"].read() == b"hello world"
    assert r["ContentType"] == "text/plain"
    assert r["ContentEncoding"] == "identity"
    assert r["ContentDisposition"] == "attachment; filename=doc.txt"
    assert r["ContentLanguage"] == "en"
    assert r["CacheControl"] == "max-age=60"
    assert r["Expires"] == expires
    assert r["Metadata"] == {"color": "blue", "mixed-case": "v"}
    assert r["ETag"] == '"%s"' % hashlib.md5(b"hello world").hexdigest()
    h = s3.head_object(Bucket=bucket, Key="doc.txt")
    assert h["ContentLength"] == 11 and h["Metadata"]["color"] == "blue"


def test_every_response_carries_request_ids_and_errors_carry_them_in_the_body(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    hdrs = r["ResponseMetadata"]["HTTPHeaders"]
    assert hdrs["x-amz-request-id"] and hdrs["x-amz-id-2"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="missing")
    assert error_of(e) == (404, "NoSuchKey")
    meta = e.value.response["ResponseMetadata"]
    assert e.value.response["Error"].get("RequestId") or meta["RequestId"]
    assert meta["HTTPHeaders"]["x-amz-request-id"] == meta["RequestId"]


def test_missing_bucket_and_key(s3):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="no-such-bucket-here", Key="k")
    assert error_of(e) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="no-such-bucket-here", Key="k")
    assert error_of(e)[0] == 404


def test_ranges_suffix_open_and_unsatisfiable(s3, bucket):
    data = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    r = s3.get_object(Bucket=bucket, Key="r", Range="bytes=0-9")
    assert r["Body"].read() == data[:10]
    assert r["ContentRange"] == f"bytes 0-9/{len(data)}"
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-5")["Body"].read() == data[-5:]
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=1000-")["Body"].read() == data[1000:]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(data)}-")
    assert error_of(e) == (416, "InvalidRange")


def test_every_range_of_an_empty_object_is_unsatisfiable(s3, bucket):
    """RFC 9110 and AWS: an empty object has no byte to select, so a suffix
    range of it is a 416 too, not a 206 with `Content-Range: bytes 0-0/0`
    (found by fuzz/fuzz_targets/ranges.rs: s3s's check answers 0..0)."""
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    for r in ("bytes=-5", "bytes=0-", "bytes=0-0"):
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="empty", Range=r)
        assert error_of(e) == (416, "InvalidRange"), r
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""


def test_response_header_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ContentType="text/plain")
    r = s3.get_object(Bucket=bucket, Key="o", ResponseContentType="application/json",
                      ResponseContentDisposition="inline", ResponseCacheControl="no-cache")
    assert r["ContentType"] == "application/json"
    assert r["ContentDisposition"] == "inline"
    assert r["CacheControl"] == "no-cache"


def test_read_preconditions_follow_aws_precedence(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"x")["ETag"]
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    future = datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"nope"')
    assert error_of(e) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert error_of(e)[0] == 304
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["etag"] == etag
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert error_of(e)[0] == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert error_of(e) == (412, "PreconditionFailed")
    # If-Match true wins over a failing If-Unmodified-Since
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=past)["Body"].read() == b"x"
    # If-None-Match false wins over a failing If-Modified-Since
    assert s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"other"', IfModifiedSince=future)["Body"].read() == b"x"


def test_conditional_writes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="w", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="w", Body=b"two", IfNoneMatch="*")
    assert error_of(e) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="w", Body=b"two", IfMatch='"0123"')
    assert error_of(e) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"two", IfMatch='"0123"')
    assert error_of(e) == (404, "NoSuchKey")
    etag = s3.head_object(Bucket=bucket, Key="w")["ETag"]
    s3.put_object(Bucket=bucket, Key="w", Body=b"two", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="w")["Body"].read() == b"two"


def test_integrity_checks_refuse_and_change_nothing(s3, bucket):
    s3.put_object(Bucket=bucket, Key="i", Body=b"original")
    bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="i", Body=b"changed", ContentMD5=bad_md5)
    assert error_of(e) == (400, "BadDigest")
    bad_sha = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="i", Body=b"changed", ChecksumSHA256=bad_sha)
    assert error_of(e) == (400, "BadDigest")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="i", Body=b"changed", ContentMD5="not-base64!")
    assert error_of(e) == (400, "InvalidDigest")
    assert s3.get_object(Bucket=bucket, Key="i")["Body"].read() == b"original"


def test_a_large_body_has_its_etag_and_content_md5_checked_like_a_small_one(s3, bucket):
    """AWS: the ETag of a single-part upload is the MD5 of its bytes, and a
    Content-MD5 that does not match is 400 BadDigest with nothing stored.
    Pinned above the size whose MD5 the server computes on a thread of its
    own (16 MiB), with a body that is not one repeated byte."""
    body = os.urandom(1 << 20) * 17 + b"tail"
    s3.put_object(Bucket=bucket, Key="big", Body=b"before")
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    bad = base64.b64encode(hashlib.md5(body[:-1] + b"!").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="big", Body=body, ContentMD5=bad)
    assert error_of(e) == (400, "BadDigest")
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == b"before"
    r = s3.put_object(Bucket=bucket, Key="big", Body=body, ContentMD5=good)
    assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    g = s3.get_object(Bucket=bucket, Key="big")
    assert g["ETag"] == r["ETag"] and g["Body"].read() == body


@pytest.mark.parametrize("algo", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_checksums_are_stored_and_returned_with_checksum_mode(s3, bucket, algo):
    r = s3.put_object(Bucket=bucket, Key=f"ck-{algo}", Body=b"abc" * 1000, ChecksumAlgorithm=algo)
    sent = r[f"Checksum{algo}"]
    assert f"Checksum{algo}" not in s3.head_object(Bucket=bucket, Key=f"ck-{algo}")
    h = s3.head_object(Bucket=bucket, Key=f"ck-{algo}", ChecksumMode="ENABLED")
    assert h[f"Checksum{algo}"] == sent
    g = s3.get_object(Bucket=bucket, Key=f"ck-{algo}", ChecksumMode="ENABLED")
    assert g[f"Checksum{algo}"] == sent and g["Body"].read() == b"abc" * 1000
    # computed here, not taken from the client that sent it
    assert sent == local_checksum(algo, b"abc" * 1000)


def local_checksum(algo, data):
    """An S3 checksum header value computed locally: hashlib, zlib and
    awscrt's CRCs (big-endian, base64)."""
    import zlib
    from awscrt import checksums
    if algo in ("SHA1", "SHA256"):
        return base64.b64encode(hashlib.new(algo.lower(), data).digest()).decode()
    value, width = {"CRC32": (zlib.crc32(data), 4), "CRC32C": (checksums.crc32c(data), 4),
                    "CRC64NVME": (checksums.crc64nvme(data), 8)}[algo]
    return base64.b64encode(value.to_bytes(width, "big")).decode()


def test_default_checksum_is_crc64nvme(server, bucket):
    c = server.client(request_checksum_calculation="when_required")
    c.put_object(Bucket=bucket, Key="plain", Body=b"data")
    h = c.head_object(Bucket=bucket, Key="plain", ChecksumMode="ENABLED")
    assert h["ChecksumCRC64NVME"] == local_checksum("CRC64NVME", b"data") and h["ChecksumType"] == "FULL_OBJECT"


def test_https_uses_aws_chunked_trailers(server, bucket):
    """Over HTTPS boto3 sends STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC trailer."""
    c = server.client(secure=True)
    body = os.urandom(300_000)
    r = c.put_object(Bucket=bucket, Key="trailer", Body=body)
    assert r["ChecksumCRC32"] == local_checksum("CRC32", body)
    assert c.get_object(Bucket=bucket, Key="trailer")["Body"].read() == body


def test_delete_object_and_delete_objects(s3, bucket):
    s3.delete_object(Bucket=bucket, Key="never-existed")  # 204, as AWS
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"d/{i}"} for i in range(3)] + [{"Key": "ghost"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["d/0", "d/1", "d/2", "ghost"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/3"}], "Quiet": True})
    assert "Deleted" not in r or r["Deleted"] == []
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["d/4"]
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": str(i)} for i in range(1001)]})
    assert error_of(e) == (400, "MalformedXML")


def test_copy_object_directives_and_self_copy(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", ContentType="text/a", Metadata={"m": "1"},
                  Tagging="t=1")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    d = s3.get_object(Bucket=bucket, Key="dst")
    assert d["Body"].read() == b"payload" and d["ContentType"] == "text/a" and d["Metadata"] == {"m": "1"}
    assert s3.get_object_tagging(Bucket=bucket, Key="dst")["TagSet"] == [{"Key": "t", "Value": "1"}]
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", ContentType="text/b", Metadata={"n": "2"})
    d2 = s3.head_object(Bucket=bucket, Key="dst2")
    assert d2["ContentType"] == "text/b" and d2["Metadata"] == {"n": "2"}
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert error_of(e) == (400, "InvalidRequest")
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"changed": "yes"})
    s = s3.get_object(Bucket=bucket, Key="src")
    assert s["Metadata"] == {"changed": "yes"} and s["Body"].read() == b"payload"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch='"no"')
    assert error_of(e) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "missing"})
    assert error_of(e) == (404, "NoSuchKey")


def test_object_attributes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"12345", ChecksumAlgorithm="SHA256")
    r = s3.get_object_attributes(Bucket=bucket, Key="a", ObjectAttributes=["ETag", "ObjectSize", "Checksum", "StorageClass"])
    assert r["ObjectSize"] == 5
    assert r["ETag"] == hashlib.md5(b"12345").hexdigest()
    assert r["Checksum"]["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"12345").digest()).decode()
    assert r["StorageClass"] == "STANDARD"


def test_object_and_bucket_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="b=2&a=1")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 2
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "k", "Value": "v"}]
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]})
    assert error_of(e) == (400, "InvalidTag")
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_of(e) == (404, "NoSuchTagSet")
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "x"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "x"}]
    s3.delete_bucket_tagging(Bucket=bucket)


ODD_KEYS = ["../escape", "a//b", "/leading", "trailing/", "100%", "ünï/cødé ✓", "sp ace", "q?x=1&y", "..", "a/../../b"]


def test_odd_keys_round_trip_and_never_touch_the_filesystem(server, s3, bucket):
    for k in ODD_KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in ODD_KEYS:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed, key=lambda s: s.encode()) == listed
    assert set(listed) == set(ODD_KEYS)
    # no file anywhere is named after a key: data lives under random ids
    for root, dirs, files in os.walk(os.path.dirname(server.data_dir)):
        for n in dirs + files:
            assert n not in ("escape", "leading", "b") and "cødé" not in n


def test_key_too_long(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert error_of(e) == (400, "KeyTooLongError")


def test_put_without_content_length_is_refused(server, s3, bucket):
    """A PUT with neither Content-Length nor chunked framing: 411 MissingContentLength."""
    import http.client
    import urllib.parse
    url = urllib.parse.urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "nolen"}))
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 411 and b"MissingContentLength" in r.read()
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nolen")
    assert error_of(e)[0] == 404


def test_post_object_browser_upload_with_policy(server, s3, bucket):
    """POST object (HTML form upload): the signed policy's conditions hold."""
    import requests
    templated = s3.generate_presigned_post(bucket, "form/${filename}")
    r = requests.post(templated["url"], data=templated["fields"], files={"file": ("a.txt", b"x")})
    assert r.status_code == 501, "${filename} is refused rather than stored literally"
    p = s3.generate_presigned_post(bucket, "form/a.txt", Conditions=[["starts-with", "$key", "form/"],
                                                                     ["content-length-range", 0, 100]])
    r = requests.post(p["url"], data=p["fields"], files={"file": ("a.txt", b"hello post")})
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=bucket, Key="form/a.txt")["Body"].read() == b"hello post"
    r = requests.post(p["url"], data=p["fields"], files={"file": ("b.txt", b"x" * 101)})
    assert r.status_code == 400 and "EntityTooLarge" in r.text
    # a key outside the policy's starts-with: refused, nothing stored under it
    fields = dict(p["fields"], key="elsewhere/c.txt")
    denied(lambda: requests.post(p["url"], data=fields, files={"file": ("c.txt", b"x")}),
           watch=bucket_state(s3, bucket, "elsewhere/c.txt", "form/a.txt"))
    # a policy changed after signing (a wider size range) fails its signature;
    # only the range changes (a byte replace of "100" also hit x-amz-date
    # between 10:00 and 10:09 UTC, and the server refused that first)
    import json
    pol = json.loads(base64.b64decode(p["fields"]["policy"]))
    pol["conditions"] = [[c[0], c[1], 999] if isinstance(c, list) and c[0] == "content-length-range" else c
                         for c in pol["conditions"]]
    assert any(isinstance(c, list) and c[2] == 999 for c in pol["conditions"])
    fields = dict(p["fields"], policy=base64.b64encode(json.dumps(pol).encode()).decode())
    # refused, and form/a.txt (the form's key) keeps its bytes
    denied(lambda: requests.post(p["url"], data=fields, files={"file": ("d.txt", b"x" * 500)}),
           want=(403, "SignatureDoesNotMatch"), watch=bucket_state(s3, bucket, "form/a.txt"))

"""Server access logs, as AWS writes them, delivered durably to a bucket,
with no logging loop.

- Put/GetBucketLogging with AWS's validation (the target must exist, must
  let the log-delivery service principal write by bucket policy — with
  aws:SourceAccount / aws:SourceArn evaluated — and must not have a default
  Object Lock retention; TargetGrants are refused under BucketOwnerEnforced).
- A scripted mix of exactly 100 requests to a logged bucket (every kind:
  PUT, GET, HEAD, LIST, DELETE, multipart, copy, denied, anonymous,
  pre-signed, SigV2, SSE-C over HTTPS, 404, 412) becomes exactly 100
  records, each parsed back with the regular expression AWS publishes for
  Athena and compared field by field with what was sent; DuckDB loads them
  through that regex into typed columns and a SQL query counts them.
- No loop: a bucket logging into itself and two logging into each other
  carry no records of deliveries.
- Crash: kill -9 right after 500 acknowledged requests; every record is
  delivered after the restart, none twice. A power cut that takes the
  spool's unsynced records keeps every acknowledged write's record (it
  rides in the write's own commit).
- No secret in any delivered log object."""
import base64
import hashlib
import http
import json
import os
import re
import time
import uuid

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ALT, MAIN, Server, error_of
from denial import bucket_state, denied, status_of

MAIN_ID = "210000000001"
INTERVAL = 1  # --log-delivery-interval for these tests (seconds)

# The regular expression AWS publishes for querying server access logs with
# Athena ("Querying access logs for requests by using Amazon Athena", Amazon
# S3 User Guide, docs.aws.amazon.com/AmazonS3/latest/userguide/
# using-s3-access-logs-to-identify-requests.html), with its columns.
ATHENA_REGEX = (r'([^ ]*) ([^ ]*) \[(.*?)\] ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ("[^"]*"|-) (-|[0-9]*) '
                r'([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ("[^"]*"|-) ([^ ]*)(?: ([^ ]*) ([^ ]*) '
                r'([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*))?.*$')
COLUMNS = ["bucketowner", "bucket_name", "requestdatetime", "remoteip", "requester", "requestid", "operation",
           "key", "request_uri", "httpstatus", "errorcode", "bytessent", "objectsize", "totaltime",
           "turnaroundtime", "referrer", "useragent", "versionid", "hostid", "sigv", "ciphersuite", "authtype",
           "endpoint", "tlsversion", "accesspointarn", "aclrequired"]


def parse(line):
    m = re.match(ATHENA_REGEX, line)
    assert m, f"a record does not match AWS's Athena regex: {line}"
    return dict(zip(COLUMNS, m.groups()))


def delivery_policy(target, source=None):
    cond = {"StringEquals": {"aws:SourceAccount": MAIN_ID}}
    if source:
        cond["ArnLike"] = {"aws:SourceArn": f"arn:aws:s3:::{source}"}
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{target}/*", "Condition": cond}]})


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(str(tmp_path_factory.mktemp("logs") / "data"),
               extra_args=["--log-delivery-interval", str(INTERVAL)]).start()
    yield s
    s.stop()


def uid():
    return uuid.uuid4().hex[:8]


def make_target(s3, name, source=None):
    s3.create_bucket(Bucket=name)
    s3.put_bucket_policy(Bucket=name, Policy=delivery_policy(name, source))


def enable(s3, src, target, prefix="", partitioned=False):
    le = {"TargetBucket": target, "TargetPrefix": prefix}
    if partitioned:
        le["TargetObjectKeyFormat"] = {"PartitionedPrefix": {"PartitionDateSource": "EventTime"}}
    s3.put_bucket_logging(Bucket=src, BucketLoggingStatus={"LoggingEnabled": le})


def delivered(s3, target, prefix=""):
    """(keys, lines) of every log object delivered to `target`."""
    keys, lines = [], []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=target, Prefix=prefix):
        for o in page.get("Contents", []):
            keys.append(o["Key"])
            lines += s3.get_object(Bucket=target, Key=o["Key"])["Body"].read().decode().splitlines()
    return keys, lines


def wait_lines(s3, target, want, prefix="", timeout=30):
    deadline = time.time() + timeout
    while True:
        keys, lines = delivered(s3, target, prefix)
        if len(lines) >= want or time.time() > deadline:
            return keys, lines
        time.sleep(0.5)


# ---------------------------------------------------------------- configuration

def test_configuration_round_trip_and_off(srv):
    s3 = srv.client(MAIN)
    src, logs = f"lsrc-{uid()}", f"llogs-{uid()}"
    s3.create_bucket(Bucket=src)
    make_target(s3, logs, src)
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=src)
    enable(s3, src, logs, "p/", partitioned=True)
    le = s3.get_bucket_logging(Bucket=src)["LoggingEnabled"]
    assert le["TargetBucket"] == logs and le["TargetPrefix"] == "p/"
    assert le["TargetObjectKeyFormat"] == {"PartitionedPrefix": {"PartitionDateSource": "EventTime"}}
    s3.put_bucket_logging(Bucket=src, BucketLoggingStatus={})
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=src)
    # under BucketOwnerEnforced the one grant that makes sense is the target
    # owner's own FULL_CONTROL: accepted (and, like the ACL it states,
    # not echoed back); any other grant is refused (test below)
    owner = s3.list_buckets()["Owner"]["ID"]
    enable_with = {"TargetBucket": logs, "TargetPrefix": "g/",
                   "TargetGrants": [{"Grantee": {"Type": "CanonicalUser", "ID": owner}, "Permission": "FULL_CONTROL"}]}
    s3.put_bucket_logging(Bucket=src, BucketLoggingStatus={"LoggingEnabled": enable_with})
    assert s3.get_bucket_logging(Bucket=src)["LoggingEnabled"]["TargetPrefix"] == "g/"


@pytest.mark.parametrize("case", ["no-target", "no-policy", "wrong-source-arn", "lock-retention", "grants"])
def test_invalid_targets_are_refused(srv, case):
    s3 = srv.client(MAIN)
    src, logs = f"lsrc-{uid()}", f"llogs-{uid()}"
    s3.create_bucket(Bucket=src)
    want = (400, "InvalidTargetBucketForLogging")
    le = {"TargetBucket": logs, "TargetPrefix": ""}
    if case == "no-policy":
        s3.create_bucket(Bucket=logs)
    elif case == "wrong-source-arn":
        make_target(s3, logs, source="some-other-bucket")
    elif case == "lock-retention":
        s3.create_bucket(Bucket=logs, ObjectLockEnabledForBucket=True)
        s3.put_bucket_policy(Bucket=logs, Policy=delivery_policy(logs, src))
        s3.put_object_lock_configuration(Bucket=logs, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    elif case == "grants":
        make_target(s3, logs, src)
        le["TargetGrants"] = [{"Grantee": {"Type": "CanonicalUser", "ID": "a" * 64}, "Permission": "READ"}]
        want = (400, "AccessControlListNotSupported")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_logging(Bucket=src, BucketLoggingStatus={"LoggingEnabled": le})
    assert error_of(e) == want
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=src)


def watcher(srv):
    """An owner client for denied()'s readers, keeping the request id of
    every request it sends (in `.ids`). Its reads of a logged bucket are
    logged too: the tests tell its records apart by these ids (and check
    each was delivered once) instead of counting them as requests under test."""
    c = srv.client(MAIN)
    c.ids = set()
    c.meta.events.register("after-call.s3",
                           lambda http_response, **_: c.ids.add(http_response.headers["x-amz-request-id"]))
    return c


def objects_of(w, bucket, key):
    """What a refused request naming `key` in a logged `bucket` could
    change: every version (keys, ETags, sizes) and upload, and `key`'s
    bytes, metadata and tags (five requests a read; max_objects=0: not the
    bytes of every object, which would flood the log under test; configs=False:
    the refused requests here are object reads)."""
    return bucket_state(w, bucket, key, configs=False, max_objects=0)


def without(lines, ids):
    """`lines` but the records of the requests in `ids`, after checking
    each of those was delivered exactly once."""
    rids = [parse(line)["requestid"] for line in lines]
    assert sorted(r for r in rids if r in ids) == sorted(ids), "a watch read's record missing or twice"
    return [line for line, r in zip(lines, rids) if r not in ids]


# ---------------------------------------------------------------- 100 requests, 100 records

def user_creds(srv):
    iam = boto3.client("iam", endpoint_url=srv.http, region_name="us-east-1",
                       aws_access_key_id=MAIN[0], aws_secret_access_key=MAIN[1])
    name = f"nobody-{uid()}"
    iam.create_user(UserName=name)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return name, (k["AccessKeyId"], k["SecretAccessKey"])


def test_one_hundred_requests_make_one_hundred_records(srv):
    s3 = srv.client(MAIN)
    s3s = srv.client(MAIN, secure=True)
    src, logs, other = f"lsrc-{uid()}", f"llogs-{uid()}", f"lother-{uid()}"
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=other)
    s3.put_object(Bucket=other, Key="copy-me", Body=b"copied bytes")
    make_target(s3, logs, src)
    enable(s3, src, logs, "access/")
    user, ucreds = user_creds(srv)
    nobody = srv.client(ucreds)
    w = watcher(srv)
    anon = boto3.client("s3", endpoint_url=srv.http, region_name="us-east-1",
                        config=Config(signature_version=boto3.session.botocore.UNSIGNED,
                                      retries={"max_attempts": 1}))
    v2 = srv.client(MAIN, signature_version="s3")
    sent = {}  # request id -> expected fields

    def rid_of(resp):
        return resp["ResponseMetadata"]["RequestId"]

    def ok(op, key, fn, **want):
        r = fn()
        sent[rid_of(r)] = dict(operation=op, key=key, status=want.pop("status", 200), **want)
        return r

    def err(op, key, fn, status, code, **want):
        with pytest.raises(ClientError) as e:
            fn()
        sent[e.value.response["ResponseMetadata"]["RequestId"]] = dict(operation=op, key=key, status=status,
                                                                      errorcode=code, **want)

    def refused(op, key, fn, **want):
        """A denied read: AccessDenied, the source bucket's objects unchanged, and a record."""
        e = denied(fn, watch=objects_of(w, src, key))
        status, code = status_of(e)  # the record logs the refusal as answered
        sent[e.response["ResponseMetadata"]["RequestId"]] = dict(operation=op, key=key, status=status,
                                                                errorcode=code, **want)

    owner_arn = f"arn:aws:iam::{MAIN_ID}:root"
    body = b"x" * 1000
    for i in range(20):
        ok("REST.PUT.OBJECT", f"k{i}", lambda i=i: s3.put_object(Bucket=src, Key=f"k{i}", Body=body),
           requester=owner_arn, objectsize="1000", sigv="SigV4", authtype="AuthHeader")
    for i in range(20):
        ok("REST.GET.OBJECT", f"k{i}", lambda i=i: s3.get_object(Bucket=src, Key=f"k{i}"),
           bytessent="1000", objectsize="1000", requester=owner_arn)
    for i in range(10):
        ok("REST.HEAD.OBJECT", f"k{i}", lambda i=i: s3.head_object(Bucket=src, Key=f"k{i}"), objectsize="1000")
    for _ in range(5):
        ok("REST.GET.BUCKET", None, lambda: s3.list_objects_v2(Bucket=src, Prefix="k1"))
    for i in range(15, 20):
        ok("REST.DELETE.OBJECT", f"k{i}", lambda i=i: s3.delete_object(Bucket=src, Key=f"k{i}"), status=204)
    up = ok("REST.POST.UPLOADS", "mp", lambda: s3.create_multipart_upload(Bucket=src, Key="mp"))["UploadId"]
    part = b"p" * (5 * 1024 * 1024)
    etags = [ok("REST.PUT.PART", "mp", lambda n=n: s3.upload_part(Bucket=src, Key="mp", UploadId=up, PartNumber=n,
                                                                  Body=part))["ETag"] for n in (1, 2)]
    ok("REST.POST.UPLOAD", "mp", lambda: s3.complete_multipart_upload(
        Bucket=src, Key="mp", UploadId=up,
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in zip((1, 2), etags)]}))
    for i in range(2):
        ok("REST.COPY.OBJECT", f"copy{i}", lambda i=i: s3.copy_object(
            Bucket=src, Key=f"copy{i}", CopySource={"Bucket": other, "Key": "copy-me"}))
    for i in range(5):
        refused("REST.GET.OBJECT", f"k{i}", lambda i=i: nobody.get_object(Bucket=src, Key=f"k{i}"),
                requester=f"arn:aws:iam::{MAIN_ID}:user/{user}")
    for i in range(5):
        refused("REST.GET.OBJECT", f"k{i}", lambda i=i: anon.get_object(Bucket=src, Key=f"k{i}"),
                requester="-", sigv="-", authtype="-")
    for i in range(5):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": src, "Key": f"k{i}"}, ExpiresIn=300)
        r = requests.get(url, timeout=10)
        assert r.status_code == 200
        sent[r.headers["x-amz-request-id"]] = dict(operation="REST.GET.OBJECT", key=f"k{i}", status=200,
                                                   authtype="QueryString", sigv="SigV4", bytessent="1000")
    for i in range(5):
        ok("REST.GET.OBJECT", f"k{i}", lambda i=i: v2.get_object(Bucket=src, Key=f"k{i}"), sigv="SigV2")
    key = os.urandom(32)
    ssec = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(key).decode(),
            "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode()}
    for i in range(2):
        ok("REST.PUT.OBJECT", f"ssec{i}", lambda i=i: s3s.put_object(Bucket=src, Key=f"ssec{i}", Body=b"c", **ssec),
           tlsversion=re.compile(r"TLSv1\.[23]"))
        ok("REST.GET.OBJECT", f"ssec{i}", lambda i=i: s3s.get_object(Bucket=src, Key=f"ssec{i}", **ssec),
           tlsversion=re.compile(r"TLSv1\.[23]"))
    for i in range(5):
        err("REST.GET.OBJECT", f"missing{i}", lambda i=i: s3.get_object(Bucket=src, Key=f"missing{i}"), 404,
            "NoSuchKey")
    for i in range(5):
        err("REST.GET.OBJECT", "k0", lambda: s3.get_object(Bucket=src, Key="k0", IfMatch='"nope"'), 412,
            "PreconditionFailed")
    assert len(sent) == 100

    # the denials' watch reads are logged too: delivered once each, then set aside
    keys, lines = wait_lines(s3, logs, 100 + len(w.ids), "access/")
    time.sleep(2 * INTERVAL)  # nothing more may come
    keys, lines = delivered(s3, logs, "access/")
    lines = without(lines, w.ids)
    assert len(lines) == 100, f"{len(lines)} records for 100 requests"
    assert all(re.fullmatch(r"access/\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-\w+", k) for k in keys), keys
    records = {r["requestid"]: r for r in map(parse, lines)}
    assert set(records) == set(sent), "one record per request, by request id"
    for rid, want in sent.items():
        r = records[rid]
        assert r["bucket_name"] == src and r["operation"] == want["operation"], (r, want)
        assert (r["key"] if r["key"] != "-" else None) == want["key"], (r, want)
        assert int(r["httpstatus"]) == want["status"], (r, want)
        assert r["errorcode"] == want.get("errorcode", "-"), (r, want)
        for f in ("requester", "bytessent", "objectsize", "sigv", "authtype"):
            if f in want:
                assert r[f] == want[f], (f, r, want)
        if "tlsversion" in want:
            assert want["tlsversion"].fullmatch(r["tlsversion"]), r
            # the negotiated suite by its OpenSSL name, as AWS logs it
            assert re.fullmatch(r"TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)"
                                r"|ECDHE-(RSA|ECDSA)-[A-Z0-9-]+", r["ciphersuite"]), r
        else:
            assert r["tlsversion"] == "-" and r["ciphersuite"] == "-", r
        assert r["request_uri"].startswith('"') and " HTTP/1.1\"" in r["request_uri"]
        assert r["hostid"] != "-"
    owners = {r["bucketowner"] for r in records.values()}
    assert len(owners) == 1 and re.fullmatch(r"[0-9a-f]{64}", owners.pop())

    # DuckDB: the records through AWS's regex into typed columns, then SQL
    import duckdb
    con = duckdb.connect()
    con.execute("CREATE TABLE raw (line VARCHAR)")
    con.executemany("INSERT INTO raw VALUES (?)", [(line,) for line in lines])
    con.execute(f"""CREATE TABLE logs AS SELECT
        r.bucket_name, r.operation, r.requester, r.errorcode,
        TRY_CAST(r.httpstatus AS INTEGER) AS httpstatus,
        TRY_CAST(NULLIF(r.bytessent, '-') AS BIGINT) AS bytessent,
        TRY_CAST(NULLIF(r.totaltime, '-') AS BIGINT) AS totaltime
        FROM (SELECT regexp_extract(line, ?, {COLUMNS!r}) AS r FROM raw)""", [ATHENA_REGEX])
    rows = dict(con.execute("SELECT operation, count(*) FROM logs GROUP BY operation").fetchall())
    want = {}
    for w in sent.values():
        want[w["operation"]] = want.get(w["operation"], 0) + 1
    assert rows == want
    assert con.execute("SELECT count(*) FROM logs WHERE httpstatus >= 400").fetchone()[0] == 20
    assert con.execute("SELECT count(*) FROM logs WHERE httpstatus IS NULL OR totaltime IS NULL").fetchone()[0] == 0
    assert con.execute("SELECT sum(bytessent) FROM logs WHERE operation = 'REST.GET.OBJECT' AND httpstatus = 200"
                       ).fetchone()[0] == 30 * 1000 + 2 * 1

    # no secret in any record
    text = "\n".join(lines)
    for secret in (MAIN[1], ucreds[1], ssec["SSECustomerKey"], ALT[1]):
        assert secret not in text
    assert "X-Amz-Signature" not in text and "X-Amz-Credential" not in text and "Signature=" not in text


def test_a_write_with_many_commits_is_one_record(srv):
    """DeleteObjects deletes its keys in concurrent commits; its record is
    still one record (REST.POST.MULTI_OBJECT_DELETE, 200), whichever of
    those commits carried it; a versioned PUT (answered with a version id,
    not as a provisional record assumes) is one record with its version id."""
    s3 = srv.client(MAIN)
    src, logs = f"lsrc-{uid()}", f"llogs-{uid()}"
    s3.create_bucket(Bucket=src)
    make_target(s3, logs, src)
    enable(s3, src, logs)
    for i in range(10):
        s3.put_object(Bucket=src, Key=f"d{i}", Body=b"x")
    r = s3.delete_objects(Bucket=src, Delete={"Objects": [{"Key": f"d{i}"} for i in range(10)]})
    assert len(r["Deleted"]) == 10
    s3.put_bucket_versioning(Bucket=src, VersioningConfiguration={"Status": "Enabled"})
    v = s3.put_object(Bucket=src, Key="v", Body=b"v")["VersionId"]
    _, lines = wait_lines(s3, logs, 14)
    time.sleep(3 * INTERVAL)  # nothing more arrives
    _, lines = delivered(s3, logs)
    recs = [parse(line) for line in lines]
    ids = [x["requestid"] for x in recs]
    assert len(ids) == len(set(ids)) == 13, sorted(x["operation"] for x in recs)
    batch = [x for x in recs if x["operation"] == "REST.POST.MULTI_OBJECT_DELETE"]
    assert len(batch) == 1 and batch[0]["httpstatus"] == "200", batch
    assert batch[0]["requestid"] == r["ResponseMetadata"]["RequestId"]
    put_v = [x for x in recs if x["operation"] == "REST.PUT.OBJECT" and x["key"] == "v"]
    assert len(put_v) == 1 and put_v[0]["versionid"] == v, put_v


def test_ten_thousand_writes_are_delivered_before_the_interval_each_once(tmp_path):
    """Writes' provisional records are rows in the metadata store, one row
    per group commit: 10,000 of them call a delivery without waiting for
    the interval (here an hour), so the table — and what a delivery holds
    in memory — stays bounded. Concurrent versioned PUTs share those rows
    with plain ones; their final records (with version ids) supersede just
    their own entries: every request is still exactly one record."""
    data = str(tmp_path / "data")
    s, s3, src, logs = crash_subject(data)
    try:
        ver = f"lver-{uid()}"
        s3.create_bucket(Bucket=ver)
        s3.put_bucket_versioning(Bucket=ver, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_policy(Bucket=logs, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{logs}/*"}]}))
        enable(s3, ver, logs)
        import concurrent.futures

        def one(i):
            if i % 100 == 0:
                r = s3.put_object(Bucket=ver, Key=f"v{i}", Body=b"v")
                return r["ResponseMetadata"]["RequestId"], r["VersionId"]
            r = s3.put_object(Bucket=src, Key=f"k{i % 50}", Body=b"x")
            return r["ResponseMetadata"]["RequestId"], None
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            acked = dict(pool.map(one, range(10_100)))
        # the 10,000th row calls the delivery; rows of requests not yet
        # answered then wait for the next one
        _, lines = wait_lines(s3, logs, 9_900, timeout=60)
        assert len(lines) >= 9_900, f"only {len(lines)} records delivered before the interval"
    finally:
        s.stop()  # a clean stop delivers the rest
    s2 = restarted(s, data)
    try:
        _, lines = delivered(s2.client(MAIN), logs)
        recs = {}
        for line in lines:
            r = parse(line)
            assert r["requestid"] not in recs, "a record delivered twice"
            recs[r["requestid"]] = r
        assert set(acked) <= set(recs), f"{len(set(acked) - set(recs))} writes lost their record"
        for rid, version in acked.items():
            assert recs[rid]["httpstatus"] == "200"
            assert recs[rid]["versionid"] == (version or "-"), recs[rid]
    finally:
        s2.stop()


# ---------------------------------------------------------------- no loop

def test_logging_into_itself_or_each_other_makes_no_loop(srv):
    """Deliveries are made by the log-delivery service, never through the
    front door: they are never logged. `a` logs into itself, `b` and `c`
    into each other; after one client request each and ten delivery cycles
    without client traffic, the logs hold exactly the client requests."""
    s3 = srv.client(MAIN)
    a, b, c = f"la-{uid()}", f"lb-{uid()}", f"lc-{uid()}"
    for x in (a, b, c):
        s3.create_bucket(Bucket=x)
        s3.put_bucket_policy(Bucket=x, Policy=delivery_policy(x))
    enable(s3, a, a, "logs/")
    enable(s3, b, c, "from-b/")
    enable(s3, c, b, "from-c/")
    for x in (a, b, c):
        s3.put_object(Bucket=x, Key="client", Body=b"one client request")
    time.sleep(12 * INTERVAL)  # ten delivery cycles and more, no client traffic
    # turning logging off is a request to a logged bucket: logged once more
    for x in (a, b, c):
        s3.put_bucket_logging(Bucket=x, BucketLoggingStatus={})
    time.sleep(4 * INTERVAL)
    # reading now is not logged (logging is off everywhere)
    ops = {}
    for x, prefix in ((a, "logs/"), (b, "from-c/"), (c, "from-b/")):
        keys, lines = delivered(s3, x, prefix)
        ops[x] = sorted(parse(line)["operation"] for line in lines)
    for x in (a, b, c):
        assert ops[x] == ["REST.PUT.LOGGING_STATUS", "REST.PUT.OBJECT"], (x, ops)


# ---------------------------------------------------------------- crash

def crash_subject(data):
    """A server on `data` delivering nothing by itself, with a bucket
    logging into another: (server, client, source, target)."""
    s = Server(data, extra_args=["--log-delivery-interval", "3600"]).start()
    s3 = s.client(MAIN, max_pool_connections=16)
    src, logs = f"lsrc-{uid()}", f"llogs-{uid()}"
    s3.create_bucket(Bucket=src)
    make_target(s3, logs, src)
    enable(s3, src, logs)
    return s, s3, src, logs


def restarted(s, data):
    """The server killed as `s`, started again on `data` and its ports,
    delivering every second."""
    s2 = Server(data, extra_args=["--log-delivery-interval", "1"])
    s2.http_port, s2.https_port, s2.admin_port, s2.website_port = s.http_port, s.https_port, s.admin_port, \
        s.website_port
    return s2.start()

def test_records_of_acknowledged_requests_survive_kill_9(tmp_path):
    data = str(tmp_path / "data")
    s, s3, src, logs = crash_subject(data)
    import concurrent.futures

    def one(i):
        return s3.put_object(Bucket=src, Key=f"k{i}", Body=b"x")["ResponseMetadata"]["RequestId"]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        acked = set(pool.map(one, range(500)))
    s.kill9()
    s2 = restarted(s, data)
    try:
        c = s2.client(MAIN)
        _, lines = wait_lines(c, logs, 500, timeout=60)
        ids = [parse(line)["requestid"] for line in lines]
        assert len(ids) == len(set(ids)), "a record delivered twice"
        assert acked <= set(ids), f"{len(acked - set(ids))} acknowledged requests lost their record"
    finally:
        s2.stop()


def test_a_power_cut_that_takes_the_spool_keeps_every_acknowledged_writes_record(tmp_path):
    """A write's record is durable with the write itself: its provisional
    record rides in the write's own metadata commit. Take the whole spool
    away (more than a power cut can: it takes only what was not synced yet)
    right after 200 acknowledged writes and some reads: after the restart
    each write's record is still delivered, exactly once, with its request
    id, operation, key and status; reads' records may be lost (they are synced within 100 ms, not before the
    answer) but none is delivered twice."""
    data = str(tmp_path / "data")
    s, s3, src, logs = crash_subject(data)
    import concurrent.futures

    def put(i):
        return s3.put_object(Bucket=src, Key=f"k{i}", Body=b"x")["ResponseMetadata"]["RequestId"], f"k{i}"
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        acked = dict(pool.map(put, range(200)))
    for i in range(20):
        s3.get_object(Bucket=src, Key=f"k{i}")["Body"].read()
    s.kill9()
    spool = os.path.join(data, "access-log")
    segments = [f for f in os.listdir(spool) if f.startswith("seg-")]
    assert segments, "the spool held the records before the cut"
    for f in segments:
        os.truncate(os.path.join(spool, f), 0)
    s2 = restarted(s, data)
    try:
        c = s2.client(MAIN)
        _, lines = wait_lines(c, logs, 200, timeout=60)
        time.sleep(2 * INTERVAL)  # nothing more arrives
        _, lines = delivered(c, logs)
        recs = [parse(line) for line in lines]
        ids = [r["requestid"] for r in recs]
        assert len(ids) == len(set(ids)), "a record delivered twice"
        puts = {r["requestid"]: r for r in recs if r["operation"] == "REST.PUT.OBJECT"}
        assert set(acked) <= set(puts), f"{len(set(acked) - set(puts))} acknowledged writes lost their record"
        for rid, key in acked.items():
            assert (puts[rid]["key"], puts[rid]["httpstatus"], puts[rid]["bucket_name"]) == (key, "200", src)
        assert len(recs) == len(puts), "only writes' records survive a cut that takes the whole spool"
    finally:
        s2.stop()


# ---------------------------------------------------------------- strongroom logs, per-bucket metrics

def code_of(call):
    """The AWS error code `call` fails with."""
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def run_logs(srv, creds, *args):
    import subprocess

    from conftest import binary
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_ROOT_", "AWS_"))}
    env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = creds
    return subprocess.run([binary(), "logs", *args, "--endpoint", srv.https, "--data-dir", srv.data_dir],
                          env=env, capture_output=True, text=True, timeout=60)


def cli_refusal(r):
    """(status, code) of a `strongroom logs` run that failed on an S3 answer
    ("GET <path>: 403 Forbidden AccessDenied <message>") and printed nothing;
    otherwise (exit code, what it printed), which no refusal matches."""
    m = re.search(r"GET \S*: (\d{3}) (.*)", r.stderr)
    if r.returncode == 0 or r.stdout != "" or not m:
        return r.returncode, r.stdout + r.stderr
    status = int(m.group(1))
    rest = m.group(2).removeprefix(http.HTTPStatus(status).phrase).split()
    return status, rest[0] if rest else ""


def test_strongroom_logs_reads_filters_and_summarises_with_the_callers_credentials(srv):
    """`strongroom logs BUCKET` finds the target in GetBucketLogging, reads the
    delivered objects through the S3 API over HTTPS (trusting the server's
    generated certificate) with the caller's keys, filters and summarises;
    a caller the policies do not let read the logs gets AccessDenied."""
    s3, alt = srv.client(MAIN), srv.client(ALT)
    w = watcher(srv)
    src, logs = f"lsrc-{uid()}", f"llogs-{uid()}"
    s3.create_bucket(Bucket=src)
    make_target(s3, logs, src)
    enable(s3, src, logs, "cli/")
    for k in ("k1", "k2", "k3"):
        s3.put_object(Bucket=src, Key=k, Body=b"four")
    for _ in range(2):
        assert s3.get_object(Bucket=src, Key="k1")["Body"].read() == b"four"
    assert code_of(lambda: s3.get_object(Bucket=src, Key="missing")) == "NoSuchKey"
    denied(lambda: alt.get_object(Bucket=src, Key="k1"), watch=objects_of(w, src, "k1"))
    # the denial's watch reads are logged as well: delivered once each, then
    # set aside here and in what the CLI prints (the summary counts them)
    watched = set(w.ids)
    _, everything = wait_lines(s3, logs, 7 + len(watched), "cli/")
    lines = without(everything, watched)
    assert len(lines) == 7
    # records of the CLI's own requests (GetBucketLogging is logged too)
    # come after `until`
    time.sleep(1.1 - time.time() % 1)
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(0.05)

    def logs_of(*args, creds=MAIN, raw=False):
        r = run_logs(srv, creds, src, "--until", until, *args)
        assert r.returncode == 0, r.stderr
        out = r.stdout.splitlines()
        return out if raw else [x for x in out if parse(x)["requestid"] not in watched]

    out = logs_of()
    assert sorted(out) == sorted(lines)
    assert len(logs_of("--operation", "rest.get.object")) == 4  # two reads, a 404, a denial
    assert [parse(x)["errorcode"] for x in logs_of("--status", "404")] == ["NoSuchKey"]
    assert len(logs_of("--prefix", "k1")) == 4
    alt_arn = parse(logs_of("--status", "403")[0])["requester"]
    assert alt_arn.startswith("arn:aws:iam::") and alt_arn.endswith(":root"), alt_arn
    assert len(logs_of("--requester", alt_arn)) == 1
    assert logs_of("--since", "1h") == out
    assert logs_of("--since", until) == []
    summary = "\n".join(logs_of("--summary", raw=True))
    n = len(everything)  # the 7 and the watch reads (all 200s)
    assert f"requests: {n}\n" in summary and f"errors:   2 ({200 / n:.1f}%)" in summary, summary
    sent = sum(int(parse(x)["bytessent"]) for x in everything if parse(x)["bytessent"] != "-")
    assert sent > 8 and f"bytes sent: {sent}" in summary, summary  # two 4-byte reads and the errors' XML
    assert "      3  200  REST.PUT.OBJECT" in summary, summary
    # another account, no access to the logs: AWS's AccessDenied, nothing
    # printed; the source bucket (its logging configuration first) and the
    # log objects delivered so far unchanged. The log bucket itself gains
    # records meanwhile (these runs' own requests to the source are logged):
    # its configurations and the objects already there are watched, not its listing.
    log_keys, _ = delivered(s3, logs)

    def log_objects():
        return {k: hashlib.sha256(s3.get_object(Bucket=logs, Key=k)["Body"].read()).hexdigest()
                for k in log_keys}

    denied(lambda: cli_refusal(run_logs(srv, ALT, src)), watch=[bucket_state(s3, src), log_objects])
    denied(lambda: cli_refusal(run_logs(srv, ALT, src, "--target", f"s3://{logs}/cli/")),
           watch=[bucket_state(s3, src), bucket_state(s3, logs, objects=False), log_objects])


def test_metrics_count_requests_and_bytes_by_existing_bucket(srv):
    s3 = srv.client(MAIN)
    b = f"lmet-{uid()}"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"x" * 1000)
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"x" * 1000
    assert code_of(lambda: s3.get_object(Bucket=b, Key="nope")) == "NoSuchKey"
    ghost = f"lghost-{uid()}"
    assert code_of(lambda: s3.get_object(Bucket=ghost, Key="k")) == "NoSuchBucket"
    text = requests.get(f"http://127.0.0.1:{srv.admin_port}/metrics", timeout=5).text

    def value(series):
        m = re.search(re.escape(series) + r" (\d+)", text)
        return int(m.group(1)) if m else None
    assert value(f'strongroom_bucket_requests_total{{bucket="{b}",status_class="2xx"}}') == 3  # create, put, get
    assert value(f'strongroom_bucket_requests_total{{bucket="{b}",status_class="4xx"}}') == 1
    assert value(f'strongroom_bucket_bytes_received_total{{bucket="{b}"}}') == 1000
    assert value(f'strongroom_bucket_bytes_sent_total{{bucket="{b}"}}') >= 1000
    assert ghost not in text, "a made-up bucket name must add no series"

"""Authentication: SigV4 (headers, pre-signed, aws-chunked), SigV2, clock
skew, unsigned headers, anonymous and cross-account callers."""
import hashlib
import os
import subprocess
import time
import uuid

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ALT, MAIN, Server
from denial import bucket_state, denied
from sigv4 import EMPTY, amz_now, chunked_body, sign


def bucket_names(srv):
    """A reader of the main account's bucket list: what an anonymous GET /
    (ListBuckets) addresses; it names no bucket."""
    c = srv.client()
    return lambda: sorted(b["Name"] for b in c.list_buckets()["Buckets"])


def curl_anonymous_list(srv, *args):
    """curl GET / on the HTTPS listener, anonymous: ListBuckets, refused with
    AccessDenied (through denied()). Returns the HTTP version curl used."""
    seen = {}

    def call():
        out = subprocess.run(["curl", "-s", "-w", "\n%{http_version} %{http_code}", "--cacert", srv.ca, *args,
                              f"{srv.https}/"], capture_output=True, text=True).stdout
        body, _, tail = out.rpartition("\n")
        seen["version"], status = tail.split()
        code = body.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in body else ""
        return int(status), code

    denied(call, watch=bucket_names(srv))
    return seen["version"]


def test_unknown_key_and_wrong_secret(server, s3, bucket):
    denied(lambda: server.client(("AKIANOSUCHKEY0000000", "x" * 40)).list_objects_v2(Bucket=bucket),
           watch=bucket_state(s3, bucket), want=(403, "InvalidAccessKeyId"))
    denied(lambda: server.client((MAIN[0], "wrong" * 8)).list_objects_v2(Bucket=bucket),
           watch=bucket_state(s3, bucket), want=(403, "SignatureDoesNotMatch"))


def test_clock_skew_beyond_15_minutes(server, s3, bucket):
    url = f"{server.http}/{bucket}?list-type=2"
    ok, *_ = sign("GET", url, MAIN, EMPTY, amz_date=amz_now(-10 * 60))
    assert requests.get(url, headers=ok).status_code == 200
    skewed, *_ = sign("GET", url, MAIN, EMPTY, amz_date=amz_now(-20 * 60))
    denied(lambda: requests.get(url, headers=skewed), watch=bucket_state(s3, bucket),
           want=(403, "RequestTimeTooSkewed"))


def test_payload_hash_is_verified(server, s3, bucket):
    url = f"{server.http}/{bucket}/hashed"
    hs, *_ = sign("PUT", url, MAIN, hashlib.sha256(b"claimed").hexdigest())
    denied(lambda: requests.put(url, data=b"actual", headers=hs), watch=bucket_state(s3, bucket, "hashed"),
           want=(400, "XAmzContentSHA256Mismatch"))
    hs, *_ = sign("PUT", url, MAIN, hashlib.sha256(b"actual").hexdigest())
    assert requests.put(url, data=b"actual", headers=hs).status_code == 200


def test_aws_chunked_signed_payload(server, s3, bucket):
    data = os.urandom(200_000)
    url = f"{server.http}/{bucket}/chunked"
    date = amz_now()
    extra = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    hs, seed, key, scope = sign("PUT", url, MAIN, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", extra, amz_date=date)
    bad = chunked_body(data, 65536, seed, key, scope, date, corrupt_chunk=1)
    denied(lambda: requests.put(url, data=bad, headers=dict(hs, **{"content-length": str(len(bad))})),
           watch=bucket_state(s3, bucket, "chunked"), want=(403, "SignatureDoesNotMatch"))
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="chunked")
    good = chunked_body(data, 65536, seed, key, scope, date)
    r = requests.put(url, data=good, headers=dict(hs, **{"content-length": str(len(good))}))
    assert r.status_code == 200, r.text
    got = s3.get_object(Bucket=bucket, Key="chunked")
    assert got["Body"].read() == data and "ContentEncoding" not in got


def test_unsigned_amz_headers_are_refused(server, s3, bucket):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p"})
    denied(lambda: requests.put(url, data=b"x", headers={"x-amz-meta-sneaky": "1"}),
           watch=bucket_state(s3, bucket, "p"))
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="p")
    assert requests.put(url, data=b"x").status_code == 200


def test_presigned_lifetime(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    week = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=604800)
    assert requests.get(week).content == b"v"
    over = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=604801)
    denied(lambda: requests.get(over), watch=bucket_state(s3, bucket, "k"),
           want=(400, "AuthorizationQueryParametersError"))
    short = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1)
    time.sleep(2.1)
    r = denied(lambda: requests.get(short), watch=bucket_state(s3, bucket, "k"))
    assert "Request has expired" in r.text
    tampered = week.replace("/k?", "/other?")
    denied(lambda: requests.get(tampered), watch=bucket_state(s3, bucket, "k", "other"),
           want=(403, "SignatureDoesNotMatch"))


def test_anonymous_and_cross_account_are_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="secret", Body=b"s")
    victim = bucket_state(s3, bucket, "secret")
    denied(lambda: requests.get(f"{server.http}/{bucket}/secret"), watch=victim)
    # (the main account's view of the missing bucket: it must still not exist)
    denied(lambda: requests.get(f"{server.http}/no-such-bucket-anywhere/x"),
           watch=bucket_state(s3, "no-such-bucket-anywhere", "x"), want=(404, "NoSuchBucket"))
    alt = server.client(ALT)
    denied(lambda: alt.get_object(Bucket=bucket, Key="secret"), watch=victim)
    alt_bucket = f"alt-{uuid.uuid4().hex[:12]}"
    alt.create_bucket(Bucket=alt_bucket)
    denied(lambda: alt.copy_object(Bucket=alt_bucket, Key="stolen", CopySource={"Bucket": bucket, "Key": "secret"}),
           watch=[victim, bucket_state(alt, alt_bucket, "stolen")])
    alt.delete_bucket(Bucket=alt_bucket)


def test_sigv2_accepted_by_default(server, s3, bucket):
    v2 = server.client(signature_version="s3")
    v2.put_object(Bucket=bucket, Key="v2", Body=b"two")
    assert v2.get_object(Bucket=bucket, Key="v2")["Body"].read() == b"two"
    url = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "v2"})
    assert "AWSAccessKeyId=" in url and requests.get(url).content == b"two"
    # a wrong SigV2 signature (header and query) is refused
    denied(lambda: server.client((MAIN[0], "wrong" * 8), signature_version="s3").get_object(Bucket=bucket, Key="v2"),
           watch=bucket_state(s3, bucket, "v2"), want=(403, "SignatureDoesNotMatch"))
    bad = url.replace("Signature=", "Signature=AAAA")
    denied(lambda: requests.get(bad), watch=bucket_state(s3, bucket, "v2"), want=(403, "SignatureDoesNotMatch"))


def test_sigv2_can_be_refused(tmp_path):
    s = Server(str(tmp_path / "data"), ["--no-sigv2"]).start()
    try:
        v4 = s.client()
        v4.create_bucket(Bucket="v2-off")
        # SigV2 switched off: AccessDenied, as the attack table pins it (V2_OFF)
        denied(lambda: s.client(signature_version="s3").list_objects(Bucket="v2-off"),
               watch=bucket_state(v4, "v2-off"))
        v4.delete_bucket(Bucket="v2-off")
    finally:
        s.stop()


def test_https_listener_and_virtual_hosted_style(tmp_path):
    s = Server(str(tmp_path / "data"), ["--domain", "localhost"]).start()
    try:
        c = s.client(secure=True)
        c.create_bucket(Bucket="vhost-b")
        c.put_object(Bucket="vhost-b", Key="k", Body=b"tls")
        vh = boto3.client("s3", endpoint_url=f"http://localhost:{s.http_port}", aws_access_key_id=MAIN[0],
                          aws_secret_access_key=MAIN[1], region_name="us-east-1",
                          config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))
        # the SDK sends Host: vhost-b.localhost; resolve it to loopback ourselves
        url = vh.generate_presigned_url("get_object", Params={"Bucket": "vhost-b", "Key": "k"})
        assert "//vhost-b.localhost:" in url
        r = requests.get(url.replace("//vhost-b.localhost:", "//127.0.0.1:"), headers={"Host": f"vhost-b.localhost:{s.http_port}"})
        assert r.content == b"tls", r.text
        # SigV2 signs /<bucket>/<key> for virtual-hosted requests
        vh2 = boto3.client("s3", endpoint_url=f"http://localhost:{s.http_port}", aws_access_key_id=MAIN[0],
                           aws_secret_access_key=MAIN[1], region_name="us-east-1",
                           config=Config(signature_version="s3", s3={"addressing_style": "virtual"}))
        url = vh2.generate_presigned_url("get_object", Params={"Bucket": "vhost-b", "Key": "k"})
        r = requests.get(url.replace("//vhost-b.localhost:", "//127.0.0.1:"), headers={"Host": f"vhost-b.localhost:{s.http_port}"})
        assert r.content == b"tls", r.text
        c.delete_object(Bucket="vhost-b", Key="k")
        c.delete_bucket(Bucket="vhost-b")
    finally:
        s.stop()


def test_expected_bucket_owner_is_enforced(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner="210000000001")
    denied(lambda: s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner="999999999999"),
           watch=bucket_state(s3, bucket, "k"))
    denied(lambda: s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k"},
                                  ExpectedSourceBucketOwner="999999999999"),
           watch=bucket_state(s3, bucket, "k", "c"))


def test_tls_minimum_version_is_enforced(tmp_path):
    s = Server(str(tmp_path / "data"), ["--tls-min", "1.3"]).start()
    try:
        # a TLS 1.3 client is served (its anonymous ListBuckets answered AccessDenied)
        curl_anonymous_list(s, "--tlsv1.3")
        base = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", s.ca, f"{s.https}/"]
        old = subprocess.run(base + ["--tlsv1.2", "--tls-max", "1.2"], capture_output=True, text=True)
        assert old.returncode != 0, "a TLS 1.2-only client is refused"
    finally:
        s.stop()


def alpn(server, offered):
    import socket
    import ssl
    ctx = ssl.create_default_context(cafile=server.ca)
    ctx.set_alpn_protocols(offered)
    with socket.create_connection(("127.0.0.1", server.https_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.selected_alpn_protocol()


def test_https_prefers_http_1_1_and_serves_http_2_to_clients_that_offer_only_it(server, tmp_path):
    """Go clients (rclone, the Go SDK) upload several times slower over
    HTTP/2 (scripts/h2_ratio.sh): when a client offers both, the server
    chooses HTTP/1.1 unless started with --prefer-http2."""
    assert alpn(server, ["h2", "http/1.1"]) == "http/1.1"
    assert alpn(server, ["h2"]) == "h2"
    # curl asking for HTTP/2 gets HTTP/1.1 and a working answer (anonymous ListBuckets: AccessDenied)
    assert curl_anonymous_list(server, "--http2") == "1.1"
    s = Server(str(tmp_path / "data"), ["--prefer-http2"]).start()
    try:
        assert alpn(s, ["h2", "http/1.1"]) == "h2"
        assert alpn(s, ["http/1.1"]) == "http/1.1"
        assert curl_anonymous_list(s, "--http2") == "2"
    finally:
        s.stop()


def test_errors_carry_code_message_resource_and_request_id(server):
    r = requests.get(f"{server.http}/Bad_Bucket_Name/k")
    assert r.status_code == 400
    for part in ("<Code>InvalidBucketName</Code>", "<Message>", "<Resource>/Bad_Bucket_Name/k</Resource>", "<RequestId>"):
        assert part in r.text, r.text
    assert r.headers["x-amz-request-id"] in r.text


def test_acl_enabled_ownership_is_refused_until_acls_exist(s3):
    name = f"own-{uuid.uuid4().hex[:10]}"
    denied(lambda: s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter"),
           watch=bucket_state(s3, name), want=(501, "NotImplemented"))  # the bucket still does not exist


def test_document_bodies_are_checked_against_their_digests(server, s3, bucket):
    """A DeleteObjects (or tagging) body that does not match its Content-MD5 changes nothing."""
    import base64
    import hashlib
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    body = (b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b'<Object><Key>keep</Key></Object></Delete>')
    url = f"{server.http}/{bucket}?delete"
    wrong = base64.b64encode(hashlib.md5(body + b" ").digest()).decode()
    hs, *_ = sign("POST", url, MAIN, hashlib.sha256(body).hexdigest(), {"content-md5": wrong})
    denied(lambda: requests.post(url, data=body, headers=hs), watch=bucket_state(s3, bucket, "keep"),
           want=(400, "BadDigest"))
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"x"
    right = base64.b64encode(hashlib.md5(body).digest()).decode()
    hs, *_ = sign("POST", url, MAIN, hashlib.sha256(body).hexdigest(), {"content-md5": right})
    assert requests.post(url, data=body, headers=hs).status_code == 200
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="keep")

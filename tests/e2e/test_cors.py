"""CORS as AWS answers it: Put/Get/DeleteBucketCors with AWS's validation,
preflight OPTIONS matched against the rules in order (origin with one
wildcard, method, every requested header without regard to case), the
matching rule's headers on actual requests — errors included — and Vary on
matches and misses. Preflights need no signature, change nothing and never
tell whether a key or a bucket exists. (The browser proves it in
test_browser.py.)"""
import json
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import MAIN, error_of
from denial import bucket_state, denied, object_state

VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"


@pytest.fixture(scope="module")
def s3(server):
    return server.client(MAIN)


def new_bucket(s3, public=False):
    b = f"cors-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=b)
    if public:
        s3.delete_public_access_block(Bucket=b)
        s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]}))
    return b


def rules(*rs):
    return {"CORSRules": list(rs)}


def options(server, path, origin=None, method=None, headers=None):
    h = {}
    if origin:
        h["Origin"] = origin
    if method:
        h["Access-Control-Request-Method"] = method
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return requests.options(f"{server.http}/{path}", headers=h, timeout=10)


def code(r):
    import re
    m = re.search(r"<Code>([^<]*)</Code>", r.text)
    return m.group(1) if m else None


# ---------------------------------------------------------------- configuration

def test_put_get_delete_round_trip(s3):
    b = new_bucket(s3)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=b)
    assert error_of(e) == (404, "NoSuchCORSConfiguration")
    cfg = rules({"ID": "web", "AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET", "PUT"],
                 "AllowedHeaders": ["x-amz-*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600},
                {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]})
    s3.put_bucket_cors(Bucket=b, CORSConfiguration=cfg)
    got = s3.get_bucket_cors(Bucket=b)["CORSRules"]
    assert got == cfg["CORSRules"]
    s3.delete_bucket_cors(Bucket=b)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=b)
    assert error_of(e) == (404, "NoSuchCORSConfiguration")


@pytest.mark.parametrize("rule,want", [
    ({"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}, (400, "InvalidRequest")),
    ({"AllowedOrigins": ["*"], "AllowedMethods": ["get"]}, (400, "InvalidRequest")),
    ({"AllowedOrigins": ["https://*.*.example.com"], "AllowedMethods": ["GET"]}, (400, "InvalidRequest")),
    ({"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": ["x-*-*"]}, (400, "InvalidRequest")),
], ids=["unsupported-method", "lowercase-method", "two-wildcard-origin", "two-wildcard-header"])
def test_invalid_rules_are_refused_and_change_nothing(s3, rule, want):
    b = new_bucket(s3)
    s3.put_bucket_cors(Bucket=b, CORSConfiguration=rules({"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}))
    with pytest.raises(ClientError) as e:
        s3.put_bucket_cors(Bucket=b, CORSConfiguration=rules(rule))
    assert error_of(e) == want
    assert s3.get_bucket_cors(Bucket=b)["CORSRules"] == [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]


def test_more_than_100_rules_are_refused(s3):
    b = new_bucket(s3)
    many = [{"AllowedOrigins": [f"https://{i}.example"], "AllowedMethods": ["GET"]} for i in range(101)]
    with pytest.raises(ClientError) as e:
        s3.put_bucket_cors(Bucket=b, CORSConfiguration=rules(*many))
    assert error_of(e) == (400, "MalformedXML")
    s3.put_bucket_cors(Bucket=b, CORSConfiguration=rules(*many[:100]))


def test_configuration_needs_put_bucket_cors_permission(server, s3):
    from test_access_matrix import iam_client
    b = new_bucket(s3)
    iam = iam_client(server, MAIN)
    name = f"cors-user-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:GetBucketCORS", "Resource": "*"}]}))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    user = server.client((k["AccessKeyId"], k["SecretAccessKey"]))
    denied(lambda: user.put_bucket_cors(Bucket=b, CORSConfiguration=rules(
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]})), watch=bucket_state(s3, b))
    with pytest.raises(ClientError) as e:
        user.get_bucket_cors(Bucket=b)
    assert error_of(e) == (404, "NoSuchCORSConfiguration")


# ---------------------------------------------------------------- preflight

@pytest.fixture(scope="module")
def site(s3):
    b = new_bucket(s3, public=True)
    s3.put_object(Bucket=b, Key="public.txt", Body=b"hello")
    s3.put_bucket_cors(Bucket=b, CORSConfiguration=rules(
        {"AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET", "PUT"],
         "AllowedHeaders": ["x-amz-*", "Content-Type"], "ExposeHeaders": ["ETag", "x-amz-meta-color"],
         "MaxAgeSeconds": 600},
        {"AllowedOrigins": ["http://other.test"], "AllowedMethods": ["GET"]},
        {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]}))
    return b


def test_preflight_match_answers_the_rules_headers(server, site):
    r = options(server, f"{site}/public.txt", "https://app.example.com", "PUT", "X-Amz-Date, content-type")
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert r.headers["Access-Control-Allow-Headers"] == "X-Amz-Date, content-type"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-meta-color"
    assert r.headers["Vary"] == VARY


def test_preflight_star_rule_answers_star(server, site):
    r = options(server, f"{site}/public.txt", "https://anyone.test", "HEAD")
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r.headers


@pytest.mark.parametrize("origin,method,headers", [
    ("https://app.example.org", "GET", None),            # origin not allowed
    ("http://app.example.com", "GET", None),             # scheme is part of the origin
    ("https://app.example.com", "DELETE", None),         # method not allowed
    ("https://app.example.com", "PUT", "authorization"),  # header not allowed
    ("http://other.test", "GET", "x-custom"),            # that rule allows no header
], ids=["origin", "scheme", "method", "header", "no-headers-rule"])
def test_preflight_miss_is_403_with_vary(server, s3, site, origin, method, headers):
    # a preflight changes nothing: the bucket (its CORS rules included) and the key it names
    r = denied(lambda: options(server, f"{site}/public.txt", origin, method, headers),
               watch=bucket_state(s3, site, "public.txt"), want=(403, "AccessForbidden"))
    assert "This CORS request is not allowed" in r.text
    assert "Access-Control-Allow-Origin" not in r.headers
    assert r.headers["Vary"] == VARY


def test_preflight_needs_origin_and_method(server, site):
    r = options(server, f"{site}/public.txt")
    assert r.status_code == 400 and code(r) == "BadRequest"
    r = options(server, f"{site}/public.txt", "https://app.example.com")
    assert r.status_code == 400 and code(r) == "BadRequest"


def test_preflight_never_tells_whether_a_key_or_bucket_exists(server, s3, site):
    a = options(server, f"{site}/public.txt", "https://app.example.com", "GET")
    b = options(server, f"{site}/no-such-key", "https://app.example.com", "GET")
    assert (a.status_code, a.headers.get("Access-Control-Allow-Origin")) == \
        (b.status_code, b.headers.get("Access-Control-Allow-Origin")) == (200, "https://app.example.com")
    no_cors = new_bucket(s3)
    c = denied(lambda: options(server, f"{no_cors}/k", "https://app.example.com", "GET"),
               watch=bucket_state(s3, no_cors, "k"), want=(403, "AccessForbidden"))
    # the bucket that does not exist must still not exist
    nobody = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    d = denied(lambda: options(server, f"{nobody}/k", "https://app.example.com", "GET"),
               watch=bucket_state(s3, nobody, "k"), want=(403, "AccessForbidden"))
    assert "CORS is not enabled for this bucket" in c.text and "CORS is not enabled for this bucket" in d.text


def test_preflight_ignores_a_presigned_query_and_changes_nothing(server, s3, site):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": site, "Key": "planted"}, ExpiresIn=300)
    r = requests.options(url, headers={"Origin": "https://app.example.com",
                                       "Access-Control-Request-Method": "PUT"}, timeout=10)
    assert r.status_code == 200
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=site, Key="planted")
    assert error_of(e)[0] == 404


def test_preflight_on_the_service_root_is_refused(server, s3):
    # the service root names no bucket: what it could change is the list of buckets
    denied(lambda: options(server, "", "https://app.example.com", "GET"),
           watch=lambda: sorted(b["Name"] for b in s3.list_buckets()["Buckets"]), want=(403, "AccessForbidden"))


# ---------------------------------------------------------------- actual requests

def test_actual_get_carries_the_matching_rules_headers(server, site):
    r = requests.get(f"{server.http}/{site}/public.txt", headers={"Origin": "http://other.test"}, timeout=10)
    assert r.status_code == 200 and r.content == b"hello"
    assert r.headers["Access-Control-Allow-Origin"] == "http://other.test"
    assert r.headers["Access-Control-Allow-Methods"] == "GET"
    assert r.headers["Vary"] == VARY


def test_actual_request_without_a_match_gets_vary_only(server, site):
    r = requests.get(f"{server.http}/{site}/public.txt", headers={"Origin": "https://evil.test"}, timeout=10)
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers
    assert r.headers["Vary"] == VARY


def test_errors_carry_cors_headers_too(server, s3, site):
    # 403: anonymous listing is not granted by the policy
    r = denied(lambda: requests.get(f"{server.http}/{site}?list-type=2", headers={"Origin": "http://other.test"},
                                    timeout=10), watch=bucket_state(s3, site))
    assert r.headers["Access-Control-Allow-Origin"] == "http://other.test"
    # 403 for a missing key the caller may not list (AWS does not tell it apart)
    r = denied(lambda: requests.get(f"{server.http}/{site}/missing", headers={"Origin": "http://other.test"},
                                    timeout=10), watch=object_state(s3, site, "missing"))
    assert r.headers["Access-Control-Allow-Origin"] == "http://other.test"
    # a signature error the envelope refuses before s3s (AWS: 400 for pre-signing parameters it cannot use)
    r = denied(lambda: requests.get(f"{server.http}/{site}/public.txt?X-Amz-Expires=999999999",
                                    headers={"Origin": "http://other.test"}, timeout=10),
               watch=object_state(s3, site, "public.txt"), want=(400, "AuthorizationQueryParametersError"))
    assert r.headers["Access-Control-Allow-Origin"] == "http://other.test"


def test_buckets_without_cors_get_no_cors_headers(server, s3):
    b = new_bucket(s3, public=True)
    s3.put_object(Bucket=b, Key="k", Body=b"x")
    r = requests.get(f"{server.http}/{b}/k", headers={"Origin": "https://app.example.com"}, timeout=10)
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers and "Vary" not in r.headers


def test_presigned_get_from_a_page_origin(server, s3, site):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": site, "Key": "public.txt"}, ExpiresIn=300)
    r = requests.get(url, headers={"Origin": "https://app.example.com"}, timeout=10)
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-meta-color"


def test_a_404_carries_cors_headers(server, s3, site):
    # the owner may list the bucket: a missing key is a 404 to it
    url = s3.generate_presigned_url("get_object", Params={"Bucket": site, "Key": "nothing-here"}, ExpiresIn=300)
    r = requests.get(url, headers={"Origin": "http://other.test"}, timeout=10)
    assert r.status_code == 404 and code(r) == "NoSuchKey"
    assert r.headers["Access-Control-Allow-Origin"] == "http://other.test"


def test_post_object_form_uploads_carry_cors_headers(server, s3):
    b = new_bucket(s3)
    s3.put_bucket_cors(Bucket=b, CORSConfiguration=rules(
        {"AllowedOrigins": ["https://uploader.test"], "AllowedMethods": ["POST"]}))
    p = s3.generate_presigned_post(b, "form/a.txt")
    r = requests.post(p["url"], data=p["fields"], files={"file": ("a.txt", b"from a form")},
                      headers={"Origin": "https://uploader.test"}, timeout=10)
    assert r.status_code == 204, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://uploader.test"
    assert r.headers["Access-Control-Allow-Methods"] == "POST"
    assert s3.get_object(Bucket=b, Key="form/a.txt")["Body"].read() == b"from a form"

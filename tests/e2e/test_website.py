"""Static website hosting through the website endpoint, as AWS's website
endpoints answer: Put/Get/DeleteBucketWebsite with AWS's validation; index
and error documents; `dir` -> `dir/` when only its index exists;
RedirectAllRequestsTo; every routing-rule form; object redirect metadata;
Range and conditional GETs; Content-Type from the object; anonymous reads
decided by the bucket policy (403 without one, 403 under Block Public
Access); 405 for other methods; HTML error pages; SSE-S3 objects served,
SSE-KMS and SSE-C ones not; the bucket from the path or from
`<bucket>.<website-domain>`."""
import json
import os
import re
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import MAIN, Server, error_of
from denial import ACCESS_DENIED, bucket_state, denied, object_state


def public(s3, b):
    s3.delete_public_access_block(Bucket=b)
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]}))


@pytest.fixture(scope="module")
def s3(server):
    return server.client(MAIN)


@pytest.fixture(scope="module")
def site(server, s3):
    b = f"web-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=b)
    public(s3, b)
    put = lambda k, body, **kw: s3.put_object(Bucket=b, Key=k, Body=body, **kw)  # noqa: E731
    put("index.html", b"<h1>home</h1>", ContentType="text/html")
    put("error.html", b"<h1>oops</h1>", ContentType="text/html")
    put("docs/index.html", b"docs home", ContentType="text/html")
    put("docs/page.html", b"a page", ContentType="text/html")
    put("documents/moved.html", b"moved here", ContentType="text/html")
    put("data.txt", b"0123456789", ContentType="text/plain")
    put("old-page", b"", WebsiteRedirectLocation="/docs/page.html")
    put("kms.txt", b"kms", ServerSideEncryption="aws:kms")
    s3.put_bucket_website(Bucket=b, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"},
        "ErrorDocument": {"Key": "error.html"},
        "RoutingRules": [
            {"Condition": {"KeyPrefixEquals": "docs-old/"}, "Redirect": {"ReplaceKeyPrefixWith": "docs/"}},
            {"Condition": {"KeyPrefixEquals": "gone/"},
             "Redirect": {"ReplaceKeyWith": "index.html", "HttpRedirectCode": "302"}},
            {"Condition": {"KeyPrefixEquals": "ext/"},
             "Redirect": {"HostName": "example.com", "Protocol": "https"}},
            {"Condition": {"HttpErrorCodeReturnedEquals": "404", "KeyPrefixEquals": "lost/"},
             "Redirect": {"HostName": "fallback.test", "ReplaceKeyPrefixWith": "found/"}},
        ]})
    return b


def get(server, path, method="GET", **kw):
    kw.setdefault("allow_redirects", False)
    return requests.request(method, f"{server.website}/{path}", timeout=10, **kw)


def refused(send, *, watch, want=ACCESS_DENIED):
    """denied() for a website answer, which names its code in an HTML page
    (`<li>Code: ...</li>`), not in XML; an error document names none ("").
    Returns the response."""
    got = {}

    def call():
        r = got["r"] = send()
        m = re.search(r"<li>Code: ([^<]*)</li>", r.text)
        return r.status_code, m.group(1) if m else ""

    denied(call, watch=watch, want=want)
    return got["r"]


# ---------------------------------------------------------------- configuration

def test_website_configuration_round_trip(s3, site):
    got = s3.get_bucket_website(Bucket=site)
    assert got["IndexDocument"] == {"Suffix": "index.html"}
    assert got["ErrorDocument"] == {"Key": "error.html"}
    assert len(got["RoutingRules"]) == 4
    assert got["RoutingRules"][1]["Redirect"] == {"ReplaceKeyWith": "index.html", "HttpRedirectCode": "302"}


@pytest.mark.parametrize("cfg", [
    {"RedirectAllRequestsTo": {"HostName": "x.test"}, "IndexDocument": {"Suffix": "index.html"}},
    {"ErrorDocument": {"Key": "e.html"}},
    {"IndexDocument": {"Suffix": "a/index.html"}},
    {"IndexDocument": {"Suffix": "index.html"},
     "RoutingRules": [{"Redirect": {"ReplaceKeyWith": "a", "ReplaceKeyPrefixWith": "b"}}]},
    {"IndexDocument": {"Suffix": "index.html"}, "RoutingRules": [{"Redirect": {"Protocol": "ftp"}}]},
    {"IndexDocument": {"Suffix": "index.html"}, "RoutingRules": [{"Redirect": {"HttpRedirectCode": "200"}}]},
    {"IndexDocument": {"Suffix": "index.html"},
     "RoutingRules": [{"Condition": {"HttpErrorCodeReturnedEquals": "200"}, "Redirect": {"HostName": "x"}}]},
], ids=["redirect-all-with-index", "no-index", "slash-in-suffix", "both-replacements", "bad-protocol",
        "bad-redirect-code", "bad-error-code"])
def test_invalid_website_configurations_are_refused(s3, cfg):
    b = f"webbad-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_website(Bucket=b, WebsiteConfiguration=cfg)
    assert error_of(e) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_website(Bucket=b)
    assert error_of(e) == (404, "NoSuchWebsiteConfiguration")


# ---------------------------------------------------------------- serving

def test_index_document_for_the_root_and_directories(server, site):
    r = get(server, f"{site}/")
    assert r.status_code == 200 and r.content == b"<h1>home</h1>"
    assert r.headers["Content-Type"] == "text/html"
    r = get(server, f"{site}/docs/")
    assert r.status_code == 200 and r.content == b"docs home"


def test_a_directory_without_its_slash_redirects(server, site):
    r = get(server, f"{site}/docs")
    assert r.status_code == 302 and r.headers["Location"] == f"/{site}/docs/"


def test_missing_key_gets_the_error_document_with_its_status(server, s3, site):
    # the policy grants GetObject only: a missing key is 403 to the public, as on AWS;
    # the error document stands in for AWS's page, so no code is shown
    r = refused(lambda: get(server, f"{site}/no-such-page.html"),
                watch=bucket_state(s3, site, "no-such-page.html", "error.html"), want=(403, ""))
    assert r.content == b"<h1>oops</h1>"


def test_object_redirect_metadata(server, site):
    r = get(server, f"{site}/old-page")
    assert r.status_code == 301 and r.headers["Location"] == "/docs/page.html"


@pytest.mark.parametrize("path,status,location", [
    ("docs-old/page.html", 301, "http://{host}/docs/page.html"),
    ("gone/anything", 302, "http://{host}/index.html"),
    ("ext/a.html", 301, "https://example.com/ext/a.html"),
], ids=["replace-prefix", "replace-key-302", "host-and-protocol"])
def test_routing_rules_before_the_read(server, site, path, status, location):
    r = get(server, f"{site}/{path}")
    host = f"127.0.0.1:{server.website_port}"
    assert r.status_code == status and r.headers["Location"] == location.format(host=host)


def test_routing_rule_on_an_error_code(server, s3):
    b = f"weberr-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    public(s3, b)
    # ListBucket too, so that a missing key is a 404 to the public
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]}]}))
    s3.put_bucket_website(Bucket=b, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"},
        "RoutingRules": [{"Condition": {"HttpErrorCodeReturnedEquals": "404", "KeyPrefixEquals": "lost/"},
                          "Redirect": {"HostName": "fallback.test", "ReplaceKeyPrefixWith": "found/"}}]})
    r = get(server, f"{b}/lost/x.html")
    assert r.status_code == 301 and r.headers["Location"] == "http://fallback.test/found/x.html"
    r = get(server, f"{b}/other.html")
    assert r.status_code == 404 and "NoSuchKey" in r.text and r.headers["Content-Type"].startswith("text/html")


def test_redirect_all_requests(server, s3):
    b = f"webredir-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_website(Bucket=b, WebsiteConfiguration={
        "RedirectAllRequestsTo": {"HostName": "www.example.com", "Protocol": "https"}})
    r = get(server, f"{b}/a/b.html")
    assert r.status_code == 301 and r.headers["Location"] == "https://www.example.com/a/b.html"


def test_range_and_conditional_reads(server, site):
    r = get(server, f"{site}/data.txt", headers={"Range": "bytes=2-5"})
    assert r.status_code == 206 and r.content == b"2345"
    etag = get(server, f"{site}/data.txt").headers["ETag"]
    r = get(server, f"{site}/data.txt", headers={"If-None-Match": etag})
    assert r.status_code == 304


def test_head_has_no_body(server, site):
    r = get(server, f"{site}/data.txt", method="HEAD")
    assert r.status_code == 200 and r.headers["Content-Length"] == "10"


def test_other_methods_are_refused_and_change_nothing(server, s3, site):
    for m in ("PUT", "POST", "DELETE"):
        refused(lambda: get(server, f"{site}/data.txt", method=m, data=b"overwritten"),
                watch=bucket_state(s3, site, "data.txt"), want=(405, "MethodNotAllowed"))
    assert s3.get_object(Bucket=site, Key="data.txt")["Body"].read() == b"0123456789"


def test_only_sse_s3_objects_are_served(server, s3, site):
    # SSE-S3 (every object by default) is served
    assert get(server, f"{site}/data.txt").content == b"0123456789"
    # SSE-KMS: an anonymous reader is no principal KMS can authorize (AWS's
    # website endpoints do not serve KMS-encrypted objects either)
    # (the site's error document stands in for AWS's page: no code is shown)
    r = refused(lambda: get(server, f"{site}/kms.txt"), watch=object_state(s3, site, "kms.txt"), want=(403, ""))
    assert b"kms" != r.content and r.content == b"<h1>oops</h1>"
    import base64
    import hashlib
    key = os.urandom(32)
    s3s = server.client(MAIN, secure=True)
    s3s.put_object(Bucket=site, Key="ssec.txt", Body=b"secret", SSECustomerAlgorithm="AES256",
                   SSECustomerKey=base64.b64encode(key).decode(),
                   SSECustomerKeyMD5=base64.b64encode(hashlib.md5(key).digest()).decode())
    r = get(server, f"{site}/ssec.txt")
    assert r.status_code == 400 and b"secret" not in r.content


def test_a_private_bucket_is_not_a_public_site(server, s3):
    b = f"webpriv-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="index.html", Body=b"private")
    s3.put_bucket_website(Bucket=b, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    r = refused(lambda: get(server, f"{b}/"), watch=bucket_state(s3, b, "index.html"))
    assert b"private" not in r.content


def test_block_public_access_blocks_a_public_site(server, s3):
    b = f"webbpa-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    public(s3, b)
    s3.put_object(Bucket=b, Key="index.html", Body=b"public once")
    s3.put_bucket_website(Bucket=b, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    assert get(server, f"{b}/").content == b"public once"
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    r = refused(lambda: get(server, f"{b}/"), watch=bucket_state(s3, b, "index.html"))
    assert b"public once" not in r.content


def test_no_website_configuration_and_no_bucket(server, s3):
    b = f"webnone-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    r = get(server, f"{b}/")
    assert r.status_code == 404 and "NoSuchWebsiteConfiguration" in r.text
    r = get(server, f"nosuch-{uuid.uuid4().hex[:10]}/")
    assert r.status_code == 404 and "NoSuchBucket" in r.text
    assert re.search(r"<li>RequestId: [0-9A-F]+</li>", r.text)


def test_the_website_endpoint_is_anonymous_whatever_the_request_says(server, s3, site):
    # a signed request to the website endpoint is still anonymous: the
    # owner's credentials do not reach a private object through it
    b = f"webanon-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="index.html", Body=b"owner only")
    s3.put_bucket_website(Bucket=b, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "index.html"}, ExpiresIn=300)
    query = url.split("?", 1)[1]
    r = refused(lambda: requests.get(f"{server.website}/{b}/index.html?{query}", timeout=10),
                watch=bucket_state(s3, b, "index.html"))
    assert b"owner only" not in r.content


def test_virtual_hosted_website_buckets_also_over_tls(tmp_path):
    from conftest import free_port
    tls_port = free_port()
    srv = Server(str(tmp_path / "data"), extra_args=["--website-domain", "web.test",
                                                      "--website-https", f"127.0.0.1:{tls_port}"]).start()
    try:
        s3 = srv.client(MAIN)
        b = f"vhost-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=b)
        public(s3, b)
        s3.put_object(Bucket=b, Key="index.html", Body=b"by host")
        s3.put_bucket_website(Bucket=b, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
        r = requests.get(f"{srv.website}/", headers={"Host": f"{b}.web.test:{srv.website_port}"}, timeout=10)
        assert r.status_code == 200 and r.content == b"by host"
        # no docs/index.html: the error, not a redirect
        refused(lambda: requests.get(f"{srv.website}/docs", headers={"Host": f"{b}.web.test"}, timeout=10,
                                     allow_redirects=False),
                watch=bucket_state(s3, b, "docs", "docs/index.html"))
        # the website endpoint over TLS (AWS's cannot), same certificate as --https
        r = requests.get(f"https://127.0.0.1:{tls_port}/{b}/", verify=srv.ca, timeout=10)
        assert r.status_code == 200 and r.content == b"by host"
    finally:
        srv.stop()



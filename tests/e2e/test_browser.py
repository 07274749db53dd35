"""CORS and static websites proven in a real browser (Debian's headless
Chromium), the set-up of the user's notes: bucket `site` is a website
served from the website endpoint (origin http://127.0.0.1:<website port>);
its index.html, uploaded with `aws s3 cp` and public by bucket policy,
reads data.json with fetch() and a custom header (a preflight) and
pixel.png with <img crossorigin> from bucket `assets` through the S3
endpoint at http://localhost:<s3 port> (another origin), and PUTs through a
pre-signed URL. The browser blocks what the assets bucket's CORS rules do
not allow; each outcome is read from the page's DOM, and a screenshot of
each phase is kept (STRONGROOM_ARTIFACTS, default /tmp/strongroom-artifacts)."""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import MAIN, REPO, error_of

CHROMIUM = shutil.which("chromium")
PAGE = REPO / "tests" / "e2e" / "browser" / "index.html"
ARTIFACTS = Path(os.environ.get("STRONGROOM_ARTIFACTS", "/tmp/strongroom-artifacts"))
# a 1x1 PNG
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/test.sh")


def chromium(url, *extra):
    with tempfile.TemporaryDirectory(prefix="strongroom-chromium-") as profile:
        out = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=20000", *extra, url],
            capture_output=True, text=True, timeout=90)
    return out


def visit(url, phase):
    """The page's results, read from its DOM; a screenshot kept."""
    dom = chromium(url, "--dump-dom").stdout
    m = re.search(r'<pre id="results">([^<]*)</pre>', dom)
    assert m, f"no results element in the page: {dom[:500]}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    chromium(url, f"--screenshot={ARTIFACTS / f'browser-{phase}.png'}", "--window-size=900,600")
    return json.loads(m.group(1)) if m.group(1) != "pending" else {"pending": True}


@pytest.fixture(scope="module")
def world(server, tmp_path_factory):
    s3 = server.client(MAIN)
    u = uuid.uuid4().hex[:8]
    site, assets = f"site-{u}", f"assets-{u}"
    policy = lambda b: json.dumps({"Version": "2012-10-17", "Statement": [{  # noqa: E731
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]})
    for b in (site, assets):
        s3.create_bucket(Bucket=b)
        s3.delete_public_access_block(Bucket=b)
        s3.put_bucket_policy(Bucket=b, Policy=policy(b))
    s3.put_bucket_website(Bucket=site, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    env = dict(os.environ, AWS_ACCESS_KEY_ID=MAIN[0], AWS_SECRET_ACCESS_KEY=MAIN[1], AWS_DEFAULT_REGION="us-east-1")
    subprocess.run(["aws", "--endpoint-url", server.http, "s3", "cp", str(PAGE), f"s3://{site}/index.html"],
                   check=True, env=env, capture_output=True, timeout=60)
    assert s3.head_object(Bucket=site, Key="index.html")["ContentType"] == "text/html"
    s3.put_object(Bucket=assets, Key="data.json", Body=b'{"hello":"from assets"}', ContentType="application/json")
    s3.put_object(Bucket=assets, Key="pixel.png", Body=PIXEL, ContentType="image/png")
    return {"s3": s3, "site": site, "assets": assets,
            "site_origin": f"http://127.0.0.1:{server.website_port}",
            "s3_origin": f"http://localhost:{server.http_port}"}


def page_url(server, w, put_key):
    from urllib.parse import quote
    # signed for the host the browser will send (localhost), not 127.0.0.1
    import boto3
    from botocore.config import Config
    signer = boto3.client("s3", endpoint_url=w["s3_origin"], region_name="us-east-1",
                          aws_access_key_id=MAIN[0], aws_secret_access_key=MAIN[1],
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    put = signer.generate_presigned_url("put_object", Params={"Bucket": w["assets"], "Key": put_key},
                                        ExpiresIn=600)
    return (f"{w['site_origin']}/{w['site']}/?s3={quote(w['s3_origin'], safe='')}&assets={w['assets']}"
            f"&put={quote(put, safe='')}")


def absent(w, key):
    with pytest.raises(ClientError) as e:
        w["s3"].head_object(Bucket=w["assets"], Key=key)
    return error_of(e)[0] == 404


def cors(w, *rules):
    w["s3"].put_bucket_cors(Bucket=w["assets"], CORSConfiguration={"CORSRules": list(rules)})


def test_1_without_cors_the_browser_blocks_every_cross_origin_read(server, world):
    got = visit(page_url(server, world, "phase1.txt"), "1-no-cors")
    assert got == {"fetch": "blocked", "img": "blocked", "put": "blocked"}, got
    assert absent(world, "phase1.txt")


def test_2_allowing_the_sites_origin_for_get_lets_the_reads_through(server, world):
    cors(world, {"AllowedOrigins": [world["site_origin"]], "AllowedMethods": ["GET"], "AllowedHeaders": ["*"]})
    got = visit(page_url(server, world, "phase2.txt"), "2-get-allowed")
    assert got == {"fetch": 'ok:{"hello":"from assets"}', "img": "ok:1x1", "put": "blocked"}, got
    assert absent(world, "phase2.txt")


def test_3_allowing_put_lets_the_presigned_upload_through(server, world):
    cors(world, {"AllowedOrigins": [world["site_origin"]], "AllowedMethods": ["GET", "PUT"],
                 "AllowedHeaders": ["*"]})
    got = visit(page_url(server, world, "phase3.txt"), "3-put-allowed")
    assert got == {"fetch": 'ok:{"hello":"from assets"}', "img": "ok:1x1", "put": "ok"}, got
    body = world["s3"].get_object(Bucket=world["assets"], Key="phase3.txt")["Body"].read()
    assert body == b"from the browser"


def test_4_a_rule_for_another_origin_does_not_help(server, world):
    cors(world, {"AllowedOrigins": ["http://127.0.0.1:1"], "AllowedMethods": ["GET", "PUT"],
                 "AllowedHeaders": ["*"]})
    got = visit(page_url(server, world, "phase4.txt"), "4-other-origin")
    assert got == {"fetch": "blocked", "img": "blocked", "put": "blocked"}, got
    assert absent(world, "phase4.txt")

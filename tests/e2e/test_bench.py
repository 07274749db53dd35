"""`strongroom bench <workload>`: the load generator against a real server
over real sockets. Not a timed test — it checks that each workload sends
the requests it says (the objects it reports are really there, or really
gone), that its counts are honest (errors are counted by AWS code, not
hidden), and that its JSON and --compare output are usable by scripts.
Figures belong in notes, measured with the same tool."""
import json
import os
import subprocess
import time
import urllib.parse

import pytest

from conftest import MAIN, binary


def bench(server, *args, secure=False, timeout=120):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=MAIN[0], AWS_SECRET_ACCESS_KEY=MAIN[1], AWS_REGION="us-east-1")
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        env.pop(k, None)
    endpoint = server.https if secure else server.http
    extra = ["--ca-bundle", server.ca] if secure else []
    r = subprocess.run([binary(), "bench", *args, "--endpoint-url", endpoint, *extra],
                       capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, r.stderr + r.stdout
    return r


def report(server, tmp_path, *args, **kw):
    out = tmp_path / f"r{len(list(tmp_path.iterdir()))}.json"
    bench(server, *args, "--json", str(out), **kw)
    return json.loads(out.read_text())


def op(rep, name):
    return next(o for o in rep["ops"] if o["op"] == name)


def keys_in(s3, bucket, prefix):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    return keys


def test_put_with_fresh_keys_writes_exactly_the_objects_it_counts(server, s3, tmp_path):
    rep = report(server, tmp_path, "put", "--bucket", "bench-put", "--keys", "0", "--ops", "150",
                 "--size", "3KiB", "--concurrency", "4", "--keep")
    put = op(rep, "PUT")
    assert put["ok"] == 150 and put["errors"] == {}
    assert put["p50_ms"] > 0 and put["p50_ms"] <= put["p99_ms"] <= put["max_ms"]
    got = keys_in(s3, "bench-put", "bench/")
    assert len(got) == 150 and {size for _, size in got} == {3072}


def test_get_reads_the_data_set_whole_and_cleans_up(server, s3, tmp_path):
    rep = report(server, tmp_path, "get", "--bucket", "bench-get", "--keys", "8", "--ops", "200",
                 "--size", "64KiB", "--concurrency", "4")
    get = op(rep, "GET")
    assert get["ok"] == 200 and get["errors"] == {}
    # MB/s counts the bytes read: 200 whole 64 KiB bodies
    assert abs(get["mb_per_s"] * rep["seconds"] - 200 * 65536 / 1e6) < 0.01
    assert keys_in(s3, "bench-get", "") == []


def test_errors_are_counted_by_aws_code_not_hidden(server, s3, tmp_path):
    # another account's bucket: the set-up fails loudly with AWS's code
    # instead of a report of zeros
    s3.create_bucket(Bucket="bench-denied")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIAE2EALT0000000001",
               AWS_SECRET_ACCESS_KEY="E2eAltSecretKey0000000000000000000000001", AWS_REGION="us-east-1")
    r = subprocess.run([binary(), "bench", "get", "--bucket", "bench-denied", "--keys", "2", "--ops", "5",
                        "--endpoint-url", server.http], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode != 0 and "BucketAlreadyExists" in r.stderr + r.stdout
    # a stat of keys that are not there: counted as NotFound, not as successes
    rep = report(server, tmp_path, "stat", "--bucket", "bench-denied", "--keys", "0", "--ops", "20",
                 "--concurrency", "2")
    stat = op(rep, "STAT")
    assert stat["ok"] == 0 and stat["errors"] == {"NotFound": 20}


def test_mixed_delete_and_multipart_do_what_they_say(server, s3, tmp_path):
    rep = report(server, tmp_path, "mixed", "--bucket", "bench-mixed", "--keys", "16", "--ops", "300",
                 "--mix", "get=40,stat=20,put=20,delete=20", "--concurrency", "4", "--keep")
    names = {o["op"] for o in rep["ops"]}
    assert {"GET", "STAT", "PUT", "DELETE"} <= names
    assert all(o["errors"] == {} for o in rep["ops"])
    assert sum(o["ok"] for o in rep["ops"]) == 300
    # what remains: the data set plus the PUTs not yet deleted
    left = {k for k, _ in keys_in(s3, "bench-mixed", "bench/")}
    made = op(rep, "PUT")["ok"]
    assert len(left) == 16 + made - op(rep, "DELETE")["ok"]

    rep = report(server, tmp_path, "delete", "--bucket", "bench-del", "--keys", "40", "--concurrency", "4")
    assert op(rep, "DELETE")["ok"] == 40 and keys_in(s3, "bench-del", "") == []

    rep = report(server, tmp_path, "multipart", "--bucket", "bench-mpu", "--size", "11MiB", "--part-size",
                 "5MiB", "--ops", "2", "--concurrency", "2", "--keep")
    assert op(rep, "MULTIPART")["ok"] == 2
    objs = keys_in(s3, "bench-mpu", "bench/")
    assert len(objs) == 2 and {size for _, size in objs} == {11 << 20}
    head = s3.head_object(Bucket="bench-mpu", Key=objs[0][0])
    assert head["ETag"].endswith('-3"')  # three parts: 5 + 5 + 1 MiB


def test_https_http2_sse_and_checksums(server, s3, tmp_path):
    rep = report(server, tmp_path, "put", "--bucket", "bench-tls", "--keys", "0", "--ops", "30", "--http2",
                 "--sse", "c", "--checksum", "crc32c", "--sign-payload", "--size", "10KiB", "--keep",
                 secure=True)
    assert rep["http"] == "HTTP/2" and op(rep, "PUT")["ok"] == 30
    key = keys_in(s3, "bench-tls", "bench/")[0][0]
    # SSE-C: without the key the object does not read
    with pytest.raises(Exception) as e:
        s3.head_object(Bucket="bench-tls", Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    rep = report(server, tmp_path, "get", "--bucket", "bench-kms", "--sse", "kms", "--bucket-key", "--keys", "4",
                 "--ops", "20", "--concurrency", "2", "--keep")
    assert op(rep, "GET")["ok"] == 20
    key = keys_in(s3, "bench-kms", "bench/")[0][0]
    head = s3.head_object(Bucket="bench-kms", Key=key)
    assert head["ServerSideEncryption"] == "aws:kms" and head["BucketKeyEnabled"] is True


def server_connections_during(server, *args):
    """The most connections the server's HTTPS port had established at once
    while `strongroom bench` ran with these arguments (polled every 50 ms)."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=MAIN[0], AWS_SECRET_ACCESS_KEY=MAIN[1], AWS_REGION="us-east-1")
    port = urllib.parse.urlsplit(server.https).port
    p = subprocess.Popen([binary(), "bench", *args, "--endpoint-url", server.https, "--ca-bundle", server.ca],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    most = 0
    while p.poll() is None:
        out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True).stdout
        most = max(most, len(out.splitlines()))
        time.sleep(0.05)
    assert p.wait(timeout=60) == 0, p.stdout.read()
    return most


@pytest.mark.parametrize("conns", [1, 3])
def test_http2_spreads_requests_over_the_connections_asked_for(server, conns):
    """--h2-connections N: N HTTP/2 connections carry the in-flight
    requests (1, the default, multiplexes them all on one, as an SDK does);
    HTTP/1.1 opens one a request in flight."""
    assert server_connections_during(server, "get", "--bucket", f"bench-h2-{conns}", "--keys", "4", "--ops", "10000",
                                     "-c", "6", "--http2", "--h2-connections", str(conns)) == conns


def test_list_and_compare(server, tmp_path):
    before = tmp_path / "before.json"
    bench(server, "list", "--bucket", "bench-list", "--keys", "30", "--list-max-keys", "10", "--ops", "20",
          "--concurrency", "2", "--json", str(before))
    assert op(json.loads(before.read_text()), "LIST")["ok"] == 20
    r = bench(server, "list", "--bucket", "bench-list", "--keys", "30", "--list-max-keys", "10", "--ops", "20",
              "--concurrency", "2", "--compare", str(before))
    assert "this / earlier" in r.stdout
    assert any(line.startswith("LIST") and line.count("x") >= 4 for line in r.stdout.splitlines())


def test_list_pages_start_anywhere_in_a_kept_data_set(server, s3, tmp_path):
    # a data set kept by one run (1-byte objects) and reused by the next,
    # which would write 2-byte objects if it made its data set again
    bench(server, "put", "--bucket", "bench-reuse", "--keys", "0", "--ops", "50", "--size", "1", "--keep")
    rep = report(server, tmp_path, "list", "--bucket", "bench-reuse", "--keys", "50", "--reuse", "--size", "2",
                 "--list-max-keys", "5", "--ops", "40", "--concurrency", "2")
    lst = op(rep, "LIST")
    assert lst["ok"] == 40 and lst["errors"] == {}
    # neither rewritten nor removed
    assert {size for _, size in keys_in(s3, "bench-reuse", "bench/")} == {1}
    assert len(keys_in(s3, "bench-reuse", "bench/")) == 50


def test_limits_measure_each_ceiling_and_runs_report_fractions_of_them(server, tmp_path):
    lim = tmp_path / "limits.json"
    r = subprocess.run([binary(), "bench", "limits", "--dir", str(tmp_path), "--write-size", "16MiB",
                        "--json", str(lim)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    got = json.loads(lim.read_text())
    for k in ("fsync_write_mb_s", "fsync_p50_ms", "aes_gcm_mb_s_per_core", "loopback_tcp_mb_s",
              "decrypting_stream_mb_s", "bare_hyper_4k_get_per_s"):
        assert got[k] > 0, (k, got)
    # the stream fed from the page cache through AES-GCM does strictly more
    # work a byte than the bare stream, and the files it used are gone
    assert got["decrypting_stream_mb_s"] < got["loopback_tcp_mb_s"], got
    assert sorted(p.name for p in tmp_path.iterdir()) == ["limits.json"]
    # a large GET is given as a fraction of both stream limits
    r = bench(server, "get", "--bucket", "bench-limits", "--keys", "1", "--ops", "4", "--size", "8MiB",
              "--concurrency", "1", "--limits", str(lim))
    lines = [line for line in r.stdout.splitlines() if line.strip().startswith("GET") and "% of" in line]
    assert any("loopback TCP" in line for line in lines), r.stdout
    assert any("page cache + AES-GCM" in line for line in lines), r.stdout

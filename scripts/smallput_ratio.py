#!/usr/bin/env python3
"""Measures small-PUT throughput of a running server with 1 client and with
N concurrent clients, and prints the ratio (group commit at work). A figure
for notes, not a test: no thresholds.

  scripts/smallput_ratio.py http://127.0.0.1:9000 ACCESS SECRET [clients] [seconds]
"""
import http.client
import sys
import threading
import time
import urllib.parse

import boto3
from botocore.config import Config


def run(endpoint, ak, sk, clients, seconds, size=4096):
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                      region_name="us-east-1", config=Config(signature_version="s3v4"))
    bucket = f"bench-{int(time.time() * 1000)}"
    s3.create_bucket(Bucket=bucket)
    # pre-sign every URL up front so the client side costs little per request
    per = 4000
    urls = [[urllib.parse.urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": f"{c}/{i}"}))
             for i in range(per)] for c in range(clients)]
    body = b"x" * size
    done = [0] * clients
    stop = time.time() + seconds

    def worker(c):
        u0 = urls[c][0]
        conn = http.client.HTTPConnection(u0.hostname, u0.port)
        for u in urls[c]:
            if time.time() > stop:
                break
            conn.request("PUT", f"{u.path}?{u.query}", body=body, headers={"Content-Length": str(size)})
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
            done[c] += 1

    ts = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(done) / (time.time() - t0)


if __name__ == "__main__":
    ep, ak, sk = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    secs = float(sys.argv[5]) if len(sys.argv) > 5 else 5
    one = run(ep, ak, sk, 1, secs)
    many = run(ep, ak, sk, n, secs)
    print(f"4 KiB PUT/s: 1 client {one:.0f}, {n} clients {many:.0f}, ratio {many / one:.1f}x")

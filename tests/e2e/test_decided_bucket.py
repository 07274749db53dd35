"""A request works on the bucket it was decided on. A bucket that is
deleted and created again under its name while a request is in flight
(decided, its body still streaming) is another bucket: the request fails
with NoSuchBucket, as for a bucket that is gone, and nothing lands in the
new one. (The c11 rows of the attack table pin the same rule between
requests; these pin it inside one.)"""
import http.client
import time
import uuid

import pytest

from attack_lib import presign_v4
from conftest import ALT, MAIN

FIRST = 64 * 1024
TOTAL = 1024 * 1024


def start_put(server, bucket, key):
    """A pre-signed PUT whose headers and first 64 KiB are sent: the server
    has authenticated and decided it and waits for the rest of the body."""
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    conn.putrequest("PUT", presign_v4(server, "PUT", f"/{bucket}/{key}", MAIN), skip_host=True,
                    skip_accept_encoding=True)
    conn.putheader("Host", f"127.0.0.1:{server.http_port}")
    conn.putheader("Content-Length", str(TOTAL))
    conn.endheaders()
    conn.send(b"a" * FIRST)
    time.sleep(0.5)
    return conn


def finish_put(conn):
    conn.send(b"a" * (TOTAL - FIRST))
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


@pytest.mark.parametrize("recreator", ["other account", "same account"])
def test_put_in_flight_when_its_bucket_is_recreated_lands_nowhere(server, recreator):
    main, alt = server.client(MAIN), server.client(ALT)
    b = f"inflight-{uuid.uuid4().hex[:12]}"
    main.create_bucket(Bucket=b)
    conn = start_put(server, b, "planted")
    main.delete_bucket(Bucket=b)  # empty: the in-flight PUT has not committed
    again = alt if recreator == "other account" else main
    again.create_bucket(Bucket=b)
    status, body = finish_put(conn)
    assert status == 404 and b"<Code>NoSuchBucket</Code>" in body, body
    assert again.list_objects_v2(Bucket=b).get("KeyCount") == 0


def test_put_in_flight_on_a_bucket_that_stays_commits(server):
    # the control: the same slow request succeeds when nothing changes
    main = server.client(MAIN)
    b = f"inflight-{uuid.uuid4().hex[:12]}"
    main.create_bucket(Bucket=b)
    status, body = finish_put(start_put(server, b, "kept"))
    assert status == 200, body
    assert main.head_object(Bucket=b, Key="kept")["ContentLength"] == TOTAL

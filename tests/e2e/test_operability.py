"""Operability: /health, Prometheus /metrics, the --config file, and
last-writer-wins on one key under concurrent writers and readers."""
import hashlib

import requests
from botocore.exceptions import ClientError

from conftest import Server, free_port
from denial import bucket_state, denied


def test_health_and_metrics(server, s3, bucket):
    assert requests.get(f"http://127.0.0.1:{server.admin_port}/health").text == "ok\n"
    s3.put_object(Bucket=bucket, Key="m", Body=b"12345")
    s3.get_object(Bucket=bucket, Key="m")["Body"].read()
    try:
        s3.get_object(Bucket=bucket, Key="absent")
    except ClientError:
        pass
    m = requests.get(f"http://127.0.0.1:{server.admin_port}/metrics").text
    assert 'strongroom_requests_total{operation="PutObject",status="200"}' in m
    assert 'strongroom_requests_total{operation="GetObject",status="404"}' in m
    assert 'strongroom_request_duration_seconds_bucket{operation="GetObject",le="+Inf"}' in m
    assert "strongroom_bytes_received_total" in m and "strongroom_bytes_sent_total" in m
    assert "strongroom_requests_in_flight" in m
    # the admin listener serves no S3
    assert requests.get(f"http://127.0.0.1:{server.admin_port}/{bucket}").status_code == 404


def test_config_file_sets_what_flags_do_and_flags_win(tmp_path):
    port = free_port()
    cfg = tmp_path / "strongroom.toml"
    cfg.write_text(f'region = "eu-west-1"\nhttp = "127.0.0.1:{port}"\nsigv2 = false\n')
    s = Server(str(tmp_path / "data"), ["--config", str(cfg)])
    # the flag given by the harness wins over the file's http address
    s.start()
    try:
        # a signature scoped to another region is refused, as AWS does
        try:
            s.client().list_buckets()
            raise AssertionError("a us-east-1 signature should be refused by an eu-west-1 server")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "AuthorizationHeaderMalformed"
        c = s.client(region="eu-west-1")
        c.create_bucket(Bucket="cfg-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        assert c.get_bucket_location(Bucket="cfg-bucket")["LocationConstraint"] == "eu-west-1"
        # SigV2 is refused by the config file; the listing read nothing into the bucket
        v2 = s.client(region="eu-west-1", signature_version="s3")
        denied(lambda: v2.list_objects(Bucket="cfg-bucket"), watch=bucket_state(c, "cfg-bucket"))
        c.delete_bucket(Bucket="cfg-bucket")
    finally:
        s.stop()


def test_concurrent_writers_to_one_key_last_writer_wins(server, s3, bucket):
    bodies = [bytes([i]) * (100_000 + i) for i in range(8)]
    digests = {hashlib.md5(b).hexdigest() for b in bodies}
    s3.put_object(Bucket=bucket, Key="hot", Body=bodies[0])
    errors = []

    def writer(i):
        c = server.client()
        for _ in range(5):
            c.put_object(Bucket=bucket, Key="hot", Body=bodies[i])

    def reader():
        c = server.client()
        for _ in range(20):
            data = c.get_object(Bucket=bucket, Key="hot")["Body"].read()
            if hashlib.md5(data).hexdigest() not in digests:
                errors.append(len(data))

    # a thread's exception must fail the test (threading.Thread would only
    # print it): result() re-raises it here
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(writer, i) for i in range(8)] + [pool.submit(reader) for _ in range(4)]
        for f in futures:
            f.result(timeout=120)
    assert not errors, "a reader saw a mixed or torn object"
    final = s3.get_object(Bucket=bucket, Key="hot")
    assert hashlib.md5(final["Body"].read()).hexdigest() == final["ETag"].strip('"')

"""The server keeps decoded bucket records between requests
(crates/store/src/cache.rs). The attacks: a grant withdrawn, or a bucket
deleted and its name taken by another account, while the attacker's own
readers keep the old record warm. AWS: once the change is acknowledged,
the next request is decided on it (403 / 404 / the new owner's rules)."""
import json
import threading
import uuid

from botocore.exceptions import ClientError

from conftest import ALT

ALT_ID = "210000000002"


def status(call):
    try:
        call()
        return 200
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


class Warm:
    """Threads reading `bucket`/`key` as ALT until stopped."""

    def __init__(self, server, bucket, key, n=3):
        self.stop = threading.Event()
        self.reads = 0

        def run():
            c = server.client(ALT)
            while not self.stop.is_set():
                status(lambda: c.get_object(Bucket=bucket, Key=key)["Body"].read())
                self.reads += 1

        self.threads = [threading.Thread(target=run, daemon=True) for _ in range(n)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def test_a_withdrawn_grant_denies_the_next_request_however_warm_the_record(server, s3, bucket):
    alt = server.client(ALT)
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    grant = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ALT_ID}:root"},
        "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]})
    with Warm(server, bucket, "k") as warm:
        for _ in range(40):
            s3.put_bucket_policy(Bucket=bucket, Policy=grant)
            assert status(lambda: alt.get_object(Bucket=bucket, Key="k")["Body"].read()) == 200
            s3.delete_bucket_policy(Bucket=bucket)
            assert status(lambda: alt.get_object(Bucket=bucket, Key="k")["Body"].read()) == 403
            assert status(lambda: alt.head_object(Bucket=bucket, Key="k")) == 403
    assert warm.reads > 40, "the readers ran alongside"
    # the denials changed nothing
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret"
    assert status(lambda: s3.get_bucket_policy(Bucket=bucket)) == 404


def test_a_name_taken_by_another_account_is_not_served_as_the_old_bucket(server, s3):
    alt = server.client(ALT)
    name = f"e2e-cache-{uuid.uuid4().hex[:12]}"
    for i in range(10):
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="k", Body=b"main's")
        with Warm(server, name, "k"):
            # MAIN's own reads keep the old record warm too
            assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"main's"
            s3.delete_object(Bucket=name, Key="k")
            s3.delete_bucket(Bucket=name)
            assert status(lambda: s3.head_bucket(Bucket=name)) == 404
            alt.create_bucket(Bucket=name)
            # MAIN is a stranger to ALT's bucket now: writes and reads refused
            assert status(lambda: s3.put_object(Bucket=name, Key="planted", Body=b"x")) == 403
            assert status(lambda: s3.list_objects_v2(Bucket=name)) == 403
            assert status(lambda: s3.put_bucket_policy(Bucket=name, Policy=json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                         "Action": "s3:*", "Resource": f"arn:aws:s3:::{name}/*"}]}))) == 403
        assert [o["Key"] for o in alt.list_objects_v2(Bucket=name).get("Contents", [])] == [], i
        alt.delete_bucket(Bucket=name)

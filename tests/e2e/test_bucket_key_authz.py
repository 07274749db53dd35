"""S3 Bucket Keys save KMS calls, never KMS decisions. With a bucket whose
default encryption is SSE-KMS with BucketKeyEnabled, once an authorized
caller has made (or opened) the bucket key, every later request — by every
caller — is still decided by the key policy, the caller's identity policies
and the key's state: a user with `Deny kms:*` and another account the key
policy does not name are refused, and a key disabled or scheduled for
deletion stops reads and writes at once, not when the bucket key expires.
The point of bucket keys holds too: 1,000 authorized PUTs make at most a
handful of GenerateDataKey calls."""
import concurrent.futures
import json
import uuid

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ALT, MAIN
from denial import bucket_state, denied

MAIN_ID, ALT_ID = "210000000001", "210000000002"


def svc(server, name, creds):
    return boto3.client(name, endpoint_url=server.http, region_name="us-east-1",
                        aws_access_key_id=creds[0], aws_secret_access_key=creds[1],
                        config=Config(retries={"max_attempts": 1}))


def err(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    return 200, None


def kms_calls(server, op):
    m = requests.get(f"http://127.0.0.1:{server.admin_port}/metrics").text
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in m.splitlines()
               if line.startswith(f'strongroom_kms_requests_total{{operation="{op}"'))


def iam_user(server, name, policy):
    iam = svc(server, "iam", MAIN)
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


@pytest.fixture(scope="module")
def world(server):
    u = uuid.uuid4().hex[:10]
    kms = svc(server, "kms", MAIN)
    key = kms.create_key(Description="bucket-key authz")["KeyMetadata"]["Arn"]
    b = f"bk-authz-{u}"
    owner = server.client(MAIN)
    owner.create_bucket(Bucket=b)
    owner.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
        "BucketKeyEnabled": True}]})
    # S3 lets the other account in; the key policy (the default: this
    # account only) does not
    owner.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ALT_ID}:root"},
        "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::{b}/*"}]}))
    s3_all = {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]}
    kms_denied = iam_user(server, f"bk-denied-{u}", {"Version": "2012-10-17", "Statement": [
        s3_all, {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "kms:*", "Resource": "*"}]})
    writer = iam_user(server, f"bk-writer-{u}", {"Version": "2012-10-17", "Statement": [
        s3_all, {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key}]})
    # the owner makes the bucket key and opens it: from here on the cache is warm
    owner.put_object(Bucket=b, Key="warm", Body=b"owner's object")
    assert owner.get_object(Bucket=b, Key="warm")["Body"].read() == b"owner's object"
    return {"b": b, "key": key, "kms": kms, "owner": owner, "writer": server.client(writer),
            "denied": server.client(kms_denied), "alt": server.client(ALT)}


def absent(w, key):
    return err(lambda: w["owner"].head_object(Bucket=w["b"], Key=key)) == (404, "404")


@pytest.mark.parametrize("who", ["denied", "alt"])
def test_a_warm_bucket_key_does_not_write_for_a_caller_kms_refuses(world, who):
    w = world
    denied(lambda: w[who].put_object(Bucket=w["b"], Key=f"by-{who}", Body=b"x"),
           watch=bucket_state(w["owner"], w["b"], f"by-{who}"))
    assert absent(w, f"by-{who}")


@pytest.mark.parametrize("who", ["denied", "alt"])
def test_a_warm_bucket_key_does_not_read_for_a_caller_kms_refuses(world, who):
    w = world
    denied(lambda: w[who].get_object(Bucket=w["b"], Key="warm")["Body"].read(),
           watch=bucket_state(w["owner"], w["b"], "warm"))


def test_callers_kms_allows_use_the_warm_bucket_key(world):
    w = world
    w["writer"].put_object(Bucket=w["b"], Key="by-writer", Body=b"writer's object")
    assert w["writer"].get_object(Bucket=w["b"], Key="warm")["Body"].read() == b"owner's object"
    assert w["owner"].get_object(Bucket=w["b"], Key="by-writer")["Body"].read() == b"writer's object"


def test_key_state_changes_take_effect_mid_ttl(world):
    w, kms = world, world["kms"]
    kid = w["key"].rsplit("/", 1)[1]
    kms.disable_key(KeyId=kid)
    try:
        assert err(lambda: w["owner"].put_object(Bucket=w["b"], Key="while-disabled", Body=b"x")) == \
            (400, "KMS.DisabledException")
        assert absent(w, "while-disabled")
        assert err(lambda: w["owner"].get_object(Bucket=w["b"], Key="warm")["Body"].read()) == \
            (400, "KMS.DisabledException")
    finally:
        kms.enable_key(KeyId=kid)
    assert w["owner"].get_object(Bucket=w["b"], Key="warm")["Body"].read() == b"owner's object"
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    try:
        assert err(lambda: w["owner"].put_object(Bucket=w["b"], Key="while-pending", Body=b"x")) == \
            (400, "KMS.KMSInvalidStateException")
        assert absent(w, "while-pending")
        assert err(lambda: w["writer"].get_object(Bucket=w["b"], Key="warm")["Body"].read()) == \
            (400, "KMS.KMSInvalidStateException")
    finally:
        kms.cancel_key_deletion(KeyId=kid)
        kms.enable_key(KeyId=kid)  # AWS leaves a cancelled key disabled
    w["owner"].put_object(Bucket=w["b"], Key="after", Body=b"back")
    assert w["writer"].get_object(Bucket=w["b"], Key="after")["Body"].read() == b"back"


def test_bucket_keys_still_save_kms_calls_for_authorized_callers(world, server):
    w = world
    before = kms_calls(server, "GenerateDataKey")

    def put(i):
        c = w["owner"] if i % 2 else w["writer"]
        c.put_object(Bucket=w["b"], Key=f"many/{i}", Body=b"x" * 64)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(1000)))
    made = kms_calls(server, "GenerateDataKey") - before
    assert made <= 5, made

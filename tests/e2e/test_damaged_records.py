"""Damaged stored records fail closed.

Records are damaged the way a disk, a bad restore or a hand edit would:
written verbatim into the data directory of a *stopped* server with
`strongroom admin record put`, then the server is started again. Each
damaged record must deny what it governed (AWS has no such state; the
safe reading is "deny"), never fall back to "no setting", which would
let a Deny or a Block Public Access silently disappear:

- a bucket policy text that does not parse: every request on the bucket
  is denied, the owner's own included, except the owner root's
  Put/DeleteBucketPolicy, which repair it;
- a bucket's Block Public Access record that does not decode counts as
  all four settings on: the public grant stops, the account keeps access;
- the account's Block Public Access record likewise, for all its buckets;
- an IAM user's inline policy that does not parse: that user is denied
  everything, even what its other policies allow.
"""
import hashlib
import json
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from conftest import MAIN, Server, binary, error_of
from denial import bucket_state, denied, iam_state
from test_access_matrix import MAIN_ID, iam_client, s3_client


def record(srv, verb, *which, data=None):
    r = subprocess.run([binary(), "admin", "record", "--data-dir", srv.data_dir, verb, *which],
                       input=data, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout


def allow(actions, resources, principal=None):
    st = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if principal is not None:
        st["Principal"] = principal
    return {"Version": "2012-10-17", "Statement": [st]}


def stored(srv):
    """A reader of what the data directory holds: the metadata database's
    bytes and the blob files. For the bucket whose policy record is damaged
    this is the only reader left: every S3 read of it, the owner's
    included, is refused (the same 403 before and after, which would prove
    nothing), while a committed write changes meta.redb and a stored body
    adds a blob."""

    def read():
        d = Path(srv.data_dir)
        blobs = sorted((str(f.relative_to(d)), f.stat().st_size) for f in (d / "blobs").rglob("*") if f.is_file())
        return hashlib.sha256((d / "meta.redb").read_bytes()).hexdigest(), blobs

    return read


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    srv = Server(str(tmp_path_factory.mktemp("damaged") / "data")).start()
    owner = srv.client(MAIN)
    anon = srv.client(MAIN, signature_version=UNSIGNED)
    tag = uuid.uuid4().hex[:8]
    w = {"srv": srv, "owner": owner, "anon": anon}
    for name in ("policy", "pab", "acct", "iam"):
        b = f"dmg-{name}-{tag}"
        owner.create_bucket(Bucket=b)
        owner.delete_public_access_block(Bucket=b)
        owner.put_object(Bucket=b, Key="open/y", Body=b"open")
        owner.put_object(Bucket=b, Key="secret/x", Body=b"secret")
        w[name] = b
    iam = iam_client(srv, MAIN)
    user = f"dmg-{tag}"
    iam.create_user(UserName=user)
    everything = [f"arn:aws:s3:::dmg-*-{tag}/*"]
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=json.dumps(allow("s3:GetObject", everything)))
    iam.put_user_policy(UserName=user, PolicyName="also", PolicyDocument=json.dumps(allow("s3:GetObject", everything)))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    w["user"] = user
    w["alice_creds"] = (k["AccessKeyId"], k["SecretAccessKey"])
    w["alice"] = s3_client(srv, w["alice_creds"])
    # the policy bucket denies alice the secret prefix; the others are public on open/
    b = w["policy"]
    owner.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:user/{user}"}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{b}/secret/*"}]}))
    for name in ("pab", "acct"):
        owner.put_bucket_policy(Bucket=w[name], Policy=json.dumps(
            allow("s3:GetObject", f"arn:aws:s3:::{w[name]}/open/*", "*")))
    yield w
    srv.stop()


def get(c, b, k):
    return c.get_object(Bucket=b, Key=k)["Body"].read()


def test_records_fail_closed_after_damage(world):
    srv, owner, anon, alice = world["srv"], world["owner"], world["anon"], world["alice"]
    # before: what each record grants and denies
    assert get(alice, world["policy"], "open/y") == b"open"
    denied(lambda: get(alice, world["policy"], "secret/x"), watch=bucket_state(owner, world["policy"], "secret/x"))
    assert get(anon, world["pab"], "open/y") == b"open"
    assert get(anon, world["acct"], "open/y") == b"open"
    assert get(alice, world["iam"], "open/y") == b"open"

    srv.stop()
    record(srv, "put", "--system", f"bucket-policy/{world['policy']}", data=b'{"Version": "2012-10-17", "Statem')
    record(srv, "put", "--bucket", world["pab"], "--config", "public-access-block", data=b"not json at all")
    record(srv, "put", "--system", f"pab/{MAIN_ID}", data=b"\x00\xff garbage")
    acct = json.loads(record(srv, "get", "--system", f"iam/{MAIN_ID}"))
    acct["users"][world["user"]]["inline"]["read"]["text"] = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allo'
    record(srv, "put", "--system", f"iam/{MAIN_ID}", data=json.dumps(acct).encode())
    srv.start()
    alice = s3_client(srv, world["alice_creds"])
    owner, anon = srv.client(MAIN), srv.client(MAIN, signature_version=UNSIGNED)

    # an unreadable bucket policy: the Deny does not vanish; nothing is allowed, the owner's reads included
    b = world["policy"]
    for call in (lambda: get(alice, b, "secret/x"), lambda: get(alice, b, "open/y"), lambda: get(owner, b, "open/y"),
                 lambda: owner.put_object(Bucket=b, Key="open/new", Body=b"x")):
        denied(call, watch=stored(srv))
    # an unreadable bucket Block Public Access: all on; the public grant stops, the account's access stays
    denied(lambda: get(anon, world["pab"], "open/y"), watch=bucket_state(owner, world["pab"], "open/y"))
    assert get(owner, world["pab"], "open/y") == b"open"
    # an unreadable account Block Public Access: all on for every bucket of the account
    denied(lambda: get(anon, world["acct"], "open/y"), watch=bucket_state(owner, world["acct"], "open/y"))
    assert get(owner, world["acct"], "open/y") == b"open"
    # an unparsable inline policy: its user is denied, though another policy allows
    denied(lambda: get(alice, world["iam"], "open/y"),
           watch=[bucket_state(owner, world["iam"], "open/y"), iam_state(iam_client(srv, MAIN), world["user"])])
    assert get(owner, world["iam"], "secret/x") == b"secret"

    # the owner root repairs the bucket policy (its standing right) and the bucket serves again
    denied(lambda: owner.get_bucket_policy(Bucket=b), watch=stored(srv))
    owner.delete_bucket_policy(Bucket=b)
    assert get(owner, b, "open/y") == b"open"
    # IAM repairs the user: replacing the broken policy restores its access
    iam_client(srv, MAIN).put_user_policy(UserName=world["user"], PolicyName="read", PolicyDocument=json.dumps(
        allow("s3:GetObject", f"arn:aws:s3:::{world['iam']}/*")))
    assert get(alice, world["iam"], "open/y") == b"open"
    # and nothing was written by the denied requests
    with pytest.raises(ClientError) as e:
        owner.head_object(Bucket=b, Key="open/new")
    assert error_of(e)[0] == 404
    assert requests.get(f"http://127.0.0.1:{srv.admin_port}/health", timeout=3).ok

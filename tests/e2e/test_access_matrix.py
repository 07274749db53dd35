"""Who may do what: a table of real requests through boto3, one per case,
pinned to AWS's policy evaluation logic
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):

- an explicit Deny anywhere wins (even over the account root);
- in the bucket owner's account, an Allow in the identity policy OR in the
  bucket policy naming the caller suffices; the root is allowed by itself;
- across accounts, the caller's identity policy AND the bucket policy must
  both allow (a root's identity allows everything);
- anonymous callers only through a bucket policy granting "*".

Each case: principal kind x policy placement x operation."""
import json
import uuid
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ALT, MAIN, error_of
from denial import bucket_state, denied, iam_state, object_state

MAIN_ID, ALT_ID = "210000000001", "210000000002"
PRINCIPALS = ["root", "user", "role", "other_root", "other_user", "anon"]
OPS = ["get", "put", "list", "delete"]
ACTION = {"get": "s3:GetObject", "put": "s3:PutObject", "list": "s3:ListBucket", "delete": "s3:DeleteObject"}


def iam_client(server, creds):
    return boto3.client("iam", endpoint_url=server.http, aws_access_key_id=creds[0],
                        aws_secret_access_key=creds[1], region_name="us-east-1")


def sts_client(server, creds, token=None):
    return boto3.client("sts", endpoint_url=server.http, aws_access_key_id=creds[0],
                        aws_secret_access_key=creds[1], aws_session_token=token, region_name="us-east-1")


def s3_client(server, creds=None, token=None, secure=False):
    cfg = Config(signature_version=UNSIGNED if creds is None else "s3v4", retries={"max_attempts": 1})
    kw = {} if creds is None else {"aws_access_key_id": creds[0], "aws_secret_access_key": creds[1],
                                   "aws_session_token": token}
    return boto3.client("s3", endpoint_url=server.https if secure else server.http, region_name="us-east-1",
                        verify=server.ca if secure else None, config=cfg, **kw)


class World:
    """One bucket of the main account, users in both accounts, a role, and a
    client per principal kind. Policies are replaced per case."""

    def __init__(self, server):
        self.server = server
        self.bucket = f"acl-{uuid.uuid4().hex[:16]}"
        self.owner = server.client(MAIN)
        self.owner.create_bucket(Bucket=self.bucket)
        # new buckets block public access (AWS's default since April 2023);
        # this matrix places public policies on purpose
        self.owner.delete_public_access_block(Bucket=self.bucket)
        self.owner.put_object(Bucket=self.bucket, Key="k", Body=b"data")
        self.iam = iam_client(server, MAIN)
        self.alt_iam = iam_client(server, ALT)
        self.user = f"alice-{uuid.uuid4().hex[:6]}"
        self.other = f"bob-{uuid.uuid4().hex[:6]}"
        self.role = f"reader-{uuid.uuid4().hex[:6]}"
        self.iam.create_user(UserName=self.user)
        k = self.iam.create_access_key(UserName=self.user)["AccessKey"]
        self.user_creds = (k["AccessKeyId"], k["SecretAccessKey"])
        self.alt_iam.create_user(UserName=self.other)
        k = self.alt_iam.create_access_key(UserName=self.other)["AccessKey"]
        self.other_creds = (k["AccessKeyId"], k["SecretAccessKey"])
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:user/{self.user}"}}]}
        self.iam.create_role(RoleName=self.role, AssumeRolePolicyDocument=json.dumps(trust))
        # the user may assume the role (same account: the trust policy suffices)
        c = sts_client(server, self.user_creds).assume_role(
            RoleArn=f"arn:aws:iam::{MAIN_ID}:role/{self.role}", RoleSessionName="matrix")["Credentials"]
        self.role_creds = (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        self.arn = {
            "root": f"arn:aws:iam::{MAIN_ID}:root",
            "user": f"arn:aws:iam::{MAIN_ID}:user/{self.user}",
            "role": f"arn:aws:iam::{MAIN_ID}:role/{self.role}",
            "other_root": f"arn:aws:iam::{ALT_ID}:root",
            "other_user": f"arn:aws:iam::{ALT_ID}:user/{self.other}",
            "anon": "*",
        }
        self.clients = {
            "root": self.owner,
            "user": s3_client(server, self.user_creds),
            "role": s3_client(server, self.role_creds[:2], self.role_creds[2]),
            "other_root": server.client(ALT),
            "other_user": s3_client(server, self.other_creds),
            "anon": s3_client(server),
        }
        self.n = 0

    def identity(self, who, doc):
        """Sets (or removes) the identity policy of a principal kind."""
        target = {"user": (self.iam, "user", self.user), "role": (self.iam, "role", self.role),
                  "other_user": (self.alt_iam, "user", self.other)}.get(who)
        if target is None:
            return
        iam, kind, name = target
        if doc is None:
            try:
                getattr(iam, f"delete_{kind}_policy")(**{f"{kind.capitalize()}Name": name, "PolicyName": "case"})
            except ClientError:
                pass
        else:
            getattr(iam, f"put_{kind}_policy")(**{f"{kind.capitalize()}Name": name, "PolicyName": "case",
                                                 "PolicyDocument": json.dumps(doc)})

    def bucket_policy(self, doc):
        if doc is None:
            self.owner.delete_bucket_policy(Bucket=self.bucket)
        else:
            self.owner.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(doc))

    def state(self, *keys):
        """What a request to the bucket could change, as the owner sees it:
        every version and delete marker (keys, ETags, sizes), the open
        uploads, every configuration, and the bytes, metadata and tags of
        `keys`. max_objects=0: the bytes of the other objects (the bucket
        gathers hundreds of w/ and d/ keys) are not re-read for every case;
        the version listing still shows any of them written or deleted."""
        return bucket_state(self.owner, self.bucket, *keys, max_objects=0)

    def run(self, who, op, allowed, **kw):
        """Performs `op` as `who`: when `allowed`, it must succeed (and a
        delete must really delete); otherwise it must be refused with 403
        AccessDenied and leave the bucket and the key it names unchanged
        (a put's key still absent, a delete's key still there, byte for byte)."""
        c = self.clients[who]
        self.n += 1
        if op == "get":
            key, call = "k", lambda: c.get_object(Bucket=self.bucket, Key="k", **kw)["Body"].read()
        elif op == "put":
            key = f"w/{self.n}"
            call = lambda: c.put_object(Bucket=self.bucket, Key=key, Body=b"x", **kw)
        elif op == "list":
            key, call = None, lambda: c.list_objects_v2(Bucket=self.bucket, **kw)
        elif op == "delete":
            key = f"d/{self.n}"
            self.owner.put_object(Bucket=self.bucket, Key=key, Body=b"x")
            call = lambda: c.delete_object(Bucket=self.bucket, Key=key, **kw)
        if allowed:
            call()
            if op == "delete":
                # the deletion really happened
                assert "Contents" not in self.owner.list_objects_v2(Bucket=self.bucket, Prefix=key)
        else:
            def attempt():
                call()
                return 200, ""  # an unexpected success, as denied() will report it

            denied(attempt, watch=self.state(*([key] if key else [])))


@pytest.fixture(scope="module")
def world(server):
    return World(server)


def resource_of(bucket, op):
    return f"arn:aws:s3:::{bucket}" if op == "list" else f"arn:aws:s3:::{bucket}/*"


def allow(action, resource, principal=None, effect="Allow", condition=None):
    st = {"Effect": effect, "Action": action, "Resource": resource}
    if principal is not None:
        st["Principal"] = principal
    if condition:
        st["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [st]}


# placement -> (identity policy?, bucket policy principal or None, bucket effect)
PLACEMENTS = ["none", "identity", "bucket", "both", "bucket_deny", "account", "account_and_identity"]


def expected(who, placement):
    """AWS's documented outcome."""
    has_identity = who in ("user", "role", "other_user")
    same = who in ("root", "user", "role")
    if placement == "bucket_deny":
        return False
    if who == "root":
        return True
    if who == "anon":
        return placement in ("bucket", "both")
    if who == "other_root":
        return placement in ("bucket", "both", "account", "account_and_identity")
    id_allow = has_identity and placement in ("identity", "both", "account_and_identity")
    bucket_names_me = placement in ("bucket", "both")
    bucket_names_my_account = placement in ("account", "account_and_identity")
    if same:
        # a grant to the account root does not reach users without their own
        return id_allow or bucket_names_me
    return id_allow and (bucket_names_me or bucket_names_my_account)


MATRIX = [(w, p, o) for w in PRINCIPALS for p in PLACEMENTS for o in OPS]


@pytest.mark.parametrize("who,placement,op", MATRIX, ids=[f"{w}-{p}-{o}" for w, p, o in MATRIX])
def test_principal_placement_operation(world, who, placement, op):
    b = world.bucket
    action, resource = ACTION[op], resource_of(b, op)
    ident = allow(action, resource) if placement in ("identity", "both", "account_and_identity") else None
    world.identity(who, ident)
    principal = {"AWS": world.arn[who]} if who != "anon" else "*"
    account = {"AWS": f"arn:aws:iam::{MAIN_ID if who in ('root', 'user', 'role') else ALT_ID}:root"}
    bpol = {
        "none": None,
        "identity": None,
        "bucket": allow(action, resource, principal),
        "both": allow(action, resource, principal),
        "bucket_deny": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": resource},
            {"Effect": "Deny", "Principal": "*", "Action": action, "Resource": resource}]},
        "account": allow(action, resource, account),
        "account_and_identity": allow(action, resource, account),
    }[placement]
    if placement == "bucket_deny" and who in ("user", "role", "other_user"):
        world.identity(who, allow(action, resource))
    world.bucket_policy(bpol)
    try:
        world.run(who, op, allowed=expected(who, placement))
    finally:
        world.identity(who, None)
        world.bucket_policy(None)


# ---- conditions: (id, who, op, policy condition, request kwargs / transport, expected)
def cond_cases(u):
    user_arn = f"arn:aws:iam::{MAIN_ID}:user/{u}"
    return [
        ("bool-secure-false-http", "Bool", {"aws:SecureTransport": "false"}, {}, True),
        ("bool-secure-true-http", "Bool", {"aws:SecureTransport": "true"}, {}, False),
        ("bool-secure-true-https", "Bool", {"aws:SecureTransport": "true"}, {"secure": True}, True),
        ("ip-loopback", "IpAddress", {"aws:SourceIp": "127.0.0.0/8"}, {}, True),
        ("ip-other-net", "IpAddress", {"aws:SourceIp": "10.0.0.0/8"}, {}, False),
        ("not-ip-other-net", "NotIpAddress", {"aws:SourceIp": "10.0.0.0/8"}, {}, True),
        ("not-ip-loopback", "NotIpAddress", {"aws:SourceIp": "127.0.0.1/32"}, {}, False),
        ("date-before-2100", "DateLessThan", {"aws:CurrentTime": "2100-01-01T00:00:00Z"}, {}, True),
        ("date-after-2100", "DateGreaterThan", {"aws:CurrentTime": "2100-01-01T00:00:00Z"}, {}, False),
        ("epoch-after-2020", "DateGreaterThan", {"aws:EpochTime": "1577836800"}, {}, True),
        ("date-equals-past", "DateEquals", {"aws:CurrentTime": "2020-01-01T00:00:00Z"}, {}, False),
        ("date-not-equals-past", "DateNotEquals", {"aws:CurrentTime": "2020-01-01T00:00:00Z"}, {}, True),
        ("arn-equals-self", "ArnEquals", {"aws:PrincipalArn": user_arn}, {}, True),
        ("arn-like-users", "ArnLike", {"aws:PrincipalArn": f"arn:aws:iam::{MAIN_ID}:user/*"}, {}, True),
        ("arn-like-roles", "ArnLike", {"aws:PrincipalArn": f"arn:aws:iam::{MAIN_ID}:role/*"}, {}, False),
        ("arn-not-equals-self", "ArnNotEquals", {"aws:PrincipalArn": user_arn}, {}, False),
        ("arn-not-like-roles", "ArnNotLike", {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}, {}, True),
        ("account-equals", "StringEquals", {"aws:PrincipalAccount": MAIN_ID}, {}, True),
        ("account-equals-other", "StringEquals", {"aws:PrincipalAccount": ALT_ID}, {}, False),
        ("type-user", "StringEquals", {"aws:PrincipalType": "User"}, {}, True),
        ("type-role", "StringEquals", {"aws:PrincipalType": "AssumedRole"}, {}, False),
        ("username", "StringEquals", {"aws:username": u}, {}, True),
        ("username-ignorecase", "StringEqualsIgnoreCase", {"aws:username": u.upper()}, {}, True),
        ("username-not-ignorecase", "StringNotEqualsIgnoreCase", {"aws:username": u.upper()}, {}, False),
        ("username-other", "StringEquals", {"aws:username": "mallory"}, {}, False),
        ("username-not-other", "StringNotEquals", {"aws:username": "mallory"}, {}, True),
        ("userid-like-aida", "StringLike", {"aws:userid": "AIDA*"}, {}, True),
        ("useragent-like-boto", "StringLike", {"aws:UserAgent": "*Botocore*"}, {}, True),
        ("useragent-not-like-boto", "StringNotLike", {"aws:UserAgent": "*Botocore*"}, {}, False),
        ("referer-missing", "StringEquals", {"aws:Referer": "https://example.com/"}, {}, False),
        ("referer-ifexists-missing", "StringEqualsIfExists", {"aws:Referer": "https://example.com/"}, {}, True),
        ("referer-present", "StringLike", {"aws:Referer": "https://example.com/*"},
         {"headers": {"Referer": "https://example.com/page"}}, True),
        ("vpc-null", "Null", {"aws:SourceVpc": "true"}, {}, True),
        ("vpce-present", "Null", {"aws:SourceVpce": "false"}, {}, False),
        ("mfa-present-false-long-term", "Bool", {"aws:MultiFactorAuthPresent": "true"}, {}, False),
        ("mfa-ifexists-long-term", "BoolIfExists", {"aws:MultiFactorAuthPresent": "false"}, {}, True),
        ("sigversion-v4", "StringEquals", {"s3:signatureversion": "AWS4-HMAC-SHA256"}, {}, True),
        ("authtype-header", "StringEquals", {"s3:authType": "REST-HEADER"}, {}, True),
        ("authtype-query", "StringEquals", {"s3:authType": "REST-QUERY-STRING"}, {}, False),
        ("signature-age-fresh", "NumericLessThan", {"s3:signatureAge": "600000"}, {}, True),
        ("signature-age-impossible", "NumericLessThan", {"s3:signatureAge": "-1"}, {}, False),
        ("content-sha-present", "Null", {"s3:x-amz-content-sha256": "false"}, {}, True),
        ("tls-version-http-absent", "NumericGreaterThanEquals", {"s3:TlsVersion": "1.2"}, {}, False),
        ("tls-version-https", "NumericGreaterThanEquals", {"s3:TlsVersion": "1.2"}, {"secure": True}, True),
        ("tls-version-https-too-new", "NumericGreaterThan", {"s3:TlsVersion": "1.3"}, {"secure": True}, False),
        ("dap-null", "Null", {"s3:DataAccessPointArn": "true"}, {}, True),
    ]


COND_IDS = [c[0] for c in cond_cases("u")]


@pytest.mark.parametrize("case", COND_IDS)
def test_condition_keys_in_identity_policy_on_get(world, case):
    cid, op_name, cond, req, want = next(c for c in cond_cases(world.user) if c[0] == case)
    world.identity("user", allow("s3:GetObject", f"arn:aws:s3:::{world.bucket}/*",
                                 condition={op_name: cond}))
    c = s3_client(world.server, world.user_creds, secure=req.get("secure", False))
    for name, value in req.get("headers", {}).items():
        c.meta.events.register("before-sign.s3.GetObject",
                               lambda request, n=name, v=value, **_: request.headers.__setitem__(n, v))
    try:
        if want:
            assert c.get_object(Bucket=world.bucket, Key="k")["Body"].read() == b"data"
        else:
            denied(lambda: c.get_object(Bucket=world.bucket, Key="k"), watch=world.state("k"))
    finally:
        world.identity("user", None)


# ---- S3 request keys in the bucket policy (owner's root is the caller; a
# Deny statement is how these are used in practice)
def deny_put_unless(condition):
    return lambda b: {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{b}/*",
         "Condition": condition}]}


PUT_CASES = [
    # forced encryption: AWS's documented example, both statements
    ("sse-kms-required-none", {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}, {}, False),
    ("sse-kms-required-aes", {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
     {"ServerSideEncryption": "AES256"}, False),
    ("sse-kms-required-kms", {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
     {"ServerSideEncryption": "aws:kms"}, True),
    ("sse-header-null-none", {"Null": {"s3:x-amz-server-side-encryption": "true"}}, {}, False),
    ("sse-header-null-given", {"Null": {"s3:x-amz-server-side-encryption": "true"}},
     {"ServerSideEncryption": "AES256"}, True),
    # negated ...IfExists holds when the key is absent: the Deny applies
    ("kms-key-ifexists-absent", {"StringNotLikeIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:*"}},
     {"ServerSideEncryption": "aws:kms"}, False),
    ("acl-private-only", {"StringNotEqualsIfExists": {"s3:x-amz-acl": "private"}}, {"ACL": "private"}, True),
    ("acl-public-refused", {"StringNotEqualsIfExists": {"s3:x-amz-acl": "private"}}, {"ACL": "public-read"}, False),
    ("tag-required-missing", {"Null": {"s3:RequestObjectTag/team": "true"}}, {}, False),
    ("tag-required-given", {"Null": {"s3:RequestObjectTag/team": "true"}}, {"Tagging": "team=blue"}, True),
    ("tag-value-wrong", {"StringNotEquals": {"s3:RequestObjectTag/team": "blue"}}, {"Tagging": "team=red"}, False),
    ("tag-value-right", {"StringNotEquals": {"s3:RequestObjectTag/team": "blue"}}, {"Tagging": "team=blue"}, True),
    ("tag-keys-forall-ok", {"ForAnyValue:StringNotEquals": {"s3:RequestObjectTagKeys": ["team", "env"]}},
     {"Tagging": "team=a&env=b"}, True),
    ("tag-keys-forall-extra", {"ForAnyValue:StringNotEquals": {"s3:RequestObjectTagKeys": ["team", "env"]}},
     {"Tagging": "team=a&owner=b"}, False),
    ("storage-class", {"StringNotEqualsIfExists": {"s3:x-amz-storage-class": "STANDARD"}},
     {"StorageClass": "STANDARD"}, True),
    ("metadata-size-numeric", {"NumericGreaterThan": {"s3:max-keys": "5"}}, {}, True),
]


@pytest.mark.parametrize("cid,condition,kwargs,want", PUT_CASES, ids=[c[0] for c in PUT_CASES])
def test_bucket_policy_request_keys_on_put(world, cid, condition, kwargs, want):
    world.bucket_policy(deny_put_unless(condition)(world.bucket))
    try:
        world.run("root", "put", allowed=want, **kwargs)
    finally:
        world.bucket_policy(None)


LIST_CASES = [
    ("prefix-home", {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}, {"Prefix": "home/{u}/x"}, True),
    ("prefix-other-home", {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}, {"Prefix": "home/bob/x"}, False),
    ("prefix-absent", {"StringLike": {"s3:prefix": "home/*"}}, {}, False),
    ("delimiter-slash", {"StringEquals": {"s3:delimiter": "/"}}, {"Delimiter": "/"}, True),
    ("delimiter-wrong", {"StringEquals": {"s3:delimiter": "/"}}, {"Delimiter": "-"}, False),
    ("max-keys-small", {"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"MaxKeys": 5}, True),
    ("max-keys-large", {"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"MaxKeys": 500}, False),
    ("max-keys-equals", {"NumericEquals": {"s3:max-keys": "7"}}, {"MaxKeys": 7}, True),
    ("max-keys-not-equals", {"NumericNotEquals": {"s3:max-keys": "7"}}, {"MaxKeys": 7}, False),
    ("max-keys-gte", {"NumericGreaterThanEquals": {"s3:max-keys": "7"}}, {"MaxKeys": 7}, True),
]


@pytest.mark.parametrize("cid,condition,kwargs,want", LIST_CASES, ids=[c[0] for c in LIST_CASES])
def test_user_list_conditions_with_policy_variables(world, cid, condition, kwargs, want):
    kwargs = {k: (v.format(u=world.user) if isinstance(v, str) else v) for k, v in kwargs.items()}
    world.identity("user", allow("s3:ListBucket", f"arn:aws:s3:::{world.bucket}", condition=condition))
    try:
        world.run("user", "list", allowed=want, **kwargs)
    finally:
        world.identity("user", None)


def test_not_action_and_not_resource(world):
    b = world.bucket
    # everything but deleting, on everything but the keep/ prefix
    world.identity("user", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{b}/*"},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": [f"arn:aws:s3:::{b}/k", f"arn:aws:s3:::{b}/w/*",
                                                               f"arn:aws:s3:::{b}/d/*"]}]})
    try:
        world.run("user", "get", allowed=True)
        world.run("user", "put", allowed=True)
        world.run("user", "delete", allowed=False)
        c = world.clients["user"]
        denied(lambda: c.put_object(Bucket=b, Key="elsewhere", Body=b"x"), watch=world.state("elsewhere"))
    finally:
        world.identity("user", None)


def test_existing_object_tag_and_version_id(world):
    b = world.bucket
    world.owner.put_object(Bucket=b, Key="tagged", Body=b"t", Tagging="class=public")
    world.owner.put_object(Bucket=b, Key="untagged", Body=b"t")
    world.identity("user", allow("s3:GetObject", f"arn:aws:s3:::{b}/*",
                                 condition={"StringEquals": {"s3:ExistingObjectTag/class": "public"}}))
    c = world.clients["user"]
    try:
        assert c.get_object(Bucket=b, Key="tagged")["Body"].read() == b"t"
        denied(lambda: c.get_object(Bucket=b, Key="untagged"), watch=world.state("untagged"))
        # GetObject with versionId needs s3:GetObjectVersion
        denied(lambda: c.get_object(Bucket=b, Key="tagged", VersionId="null"),
               watch=[world.state("tagged"), object_state(world.owner, b, "tagged", version="null")])
    finally:
        world.identity("user", None)


def test_groups_and_managed_policies_grant_like_inline_ones(world):
    b = world.bucket
    doc = allow("s3:GetObject", f"arn:aws:s3:::{b}/*")
    pol = world.iam.create_policy(PolicyName=f"get-{uuid.uuid4().hex[:6]}", PolicyDocument=json.dumps(doc))
    arn = pol["Policy"]["Arn"]
    world.run("user", "get", allowed=False)
    world.iam.attach_user_policy(UserName=world.user, PolicyArn=arn)
    world.run("user", "get", allowed=True)
    world.iam.detach_user_policy(UserName=world.user, PolicyArn=arn)
    world.run("user", "get", allowed=False)
    g = f"readers-{uuid.uuid4().hex[:6]}"
    world.iam.create_group(GroupName=g)
    world.iam.attach_group_policy(GroupName=g, PolicyArn=arn)
    world.iam.add_user_to_group(GroupName=g, UserName=world.user)
    world.run("user", "get", allowed=True)
    world.iam.remove_user_from_group(GroupName=g, UserName=world.user)
    world.run("user", "get", allowed=False)


def test_copy_needs_read_on_the_source_and_write_on_the_destination(world):
    b = world.bucket
    c = world.clients["user"]
    world.identity("user", allow("s3:PutObject", f"arn:aws:s3:::{b}/*"))
    try:
        denied(lambda: c.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "k"}),
               watch=world.state("copy", "k"))
        world.identity("user", allow(["s3:PutObject", "s3:GetObject"], f"arn:aws:s3:::{b}/*"))
        c.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "k"})
    finally:
        world.identity("user", None)


def test_delete_objects_is_authorized_per_key(world):
    b = world.bucket
    for k in ("mine/1", "theirs/1"):
        world.owner.put_object(Bucket=b, Key=k, Body=b"x")
    world.identity("user", allow("s3:DeleteObject", f"arn:aws:s3:::{b}/mine/*"))
    r = {}

    def batch():
        """The batch answers 200; theirs/1 is refused inside it: (200, its code)."""
        r.update(world.clients["user"].delete_objects(
            Bucket=b, Delete={"Objects": [{"Key": "mine/1"}, {"Key": "theirs/1"}]}))
        return 200, {e["Key"]: e["Code"] for e in r.get("Errors", [])}.get("theirs/1", "")

    def all_but_mine():
        """The bucket's state except mine/1, which the batch may delete."""
        st = world.state("theirs/1")()
        st["versions"] = [v for v in st["versions"] if v[0] != "mine/1"]
        return st

    try:
        denied(batch, want=(200, "AccessDenied"), watch=all_but_mine)
        assert [d["Key"] for d in r.get("Deleted", [])] == ["mine/1"]
        assert [e["Key"] for e in r.get("Errors", [])] == ["theirs/1"]
        keys = [o["Key"] for o in world.owner.list_objects_v2(Bucket=b, Prefix="theirs/").get("Contents", [])]
        assert keys == ["theirs/1"]
    finally:
        world.identity("user", None)


def test_owner_root_keeps_control_of_a_deny_all_policy(world):
    b = world.bucket
    # under a deny-all the owner's own readers see mostly AccessDenied, so
    # run()'s watch is blind to the objects: compare them across the window
    objects = bucket_state(world.owner, b, "k", configs=False, max_objects=0)
    before = objects()
    world.bucket_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]}]})
    try:
        world.run("root", "get", allowed=False)
        world.run("root", "list", allowed=False)
        assert "Deny" in world.owner.get_bucket_policy(Bucket=b)["Policy"]
    finally:
        world.owner.delete_bucket_policy(Bucket=b)
    assert objects() == before
    world.run("root", "get", allowed=True)


def test_public_access_block_restricts_and_blocks_public_policies(world):
    b = world.bucket
    public = allow("s3:GetObject", f"arn:aws:s3:::{b}/*", "*")
    world.bucket_policy(public)
    assert world.owner.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is True
    world.run("anon", "get", allowed=True)
    world.run("other_root", "get", allowed=True)
    world.owner.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False, "RestrictPublicBuckets": True})
    try:
        world.run("anon", "get", allowed=False)
        world.run("other_root", "get", allowed=False)
        world.run("root", "get", allowed=True)
        world.owner.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        # BlockPublicPolicy: a public policy is refused, the bucket keeps its own
        denied(lambda: world.owner.put_bucket_policy(Bucket=b, Policy=json.dumps(public)), watch=world.state())
        # a policy pinned to a network is not public and is accepted
        pinned = allow("s3:GetObject", f"arn:aws:s3:::{b}/*", "*",
                       condition={"IpAddress": {"aws:SourceIp": "10.1.0.0/16"}})
        world.owner.put_bucket_policy(Bucket=b, Policy=json.dumps(pinned))
        assert world.owner.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is False
        cfg = world.owner.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"]
        assert cfg == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                       "RestrictPublicBuckets": True}
    finally:
        world.owner.delete_public_access_block(Bucket=b)
        world.bucket_policy(None)
    with pytest.raises(ClientError) as e:
        world.owner.get_public_access_block(Bucket=b)
    assert error_of(e) == (404, "NoSuchPublicAccessBlockConfiguration")


@pytest.mark.parametrize("doc,needle", [
    ("{", "MalformedPolicy"),
    ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}',
     "MalformedPolicy"),
    ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",'
     '"Resource":"arn:aws:s3:::some-other-bucket/*"}]}', "MalformedPolicy"),
    ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ec2:RunInstances",'
     '"Resource":"arn:aws:s3:::BUCKET/*"}]}', "MalformedPolicy"),
    ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",'
     '"Resource":"arn:aws:s3:::BUCKET/*","Condition":{"StringEqualz":{"a":"b"}}}]}', "MalformedPolicy"),
])
def test_malformed_bucket_policies_are_refused_and_change_nothing(world, doc, needle):
    b = world.bucket
    with pytest.raises(ClientError) as e:
        world.owner.put_bucket_policy(Bucket=b, Policy=doc.replace("BUCKET", b))
    assert error_of(e) == (400, needle)
    with pytest.raises(ClientError) as e:
        world.owner.get_bucket_policy(Bucket=b)
    assert error_of(e) == (404, "NoSuchBucketPolicy")


def test_role_session_sees_role_policy_changes_and_trust_is_enforced(world, server):
    b = world.bucket
    world.run("role", "get", allowed=False)
    world.identity("role", allow("s3:GetObject", f"arn:aws:s3:::{b}/*"))
    world.run("role", "get", allowed=True)
    world.identity("role", None)
    # the other account's user is not trusted by the role: no session, the
    # role (trust and policies) and both accounts' IAM as they were
    denied(lambda: sts_client(server, world.other_creds).assume_role(
        RoleArn=f"arn:aws:iam::{MAIN_ID}:role/{world.role}", RoleSessionName="intruder"),
        watch=[iam_state(world.iam, world.user, roles=[world.role]), iam_state(world.alt_iam, world.other)])
    who = sts_client(server, world.role_creds[:2], world.role_creds[2]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{MAIN_ID}:assumed-role/{world.role}/matrix"
    # a session key without its token is refused (this server: 400
    # InvalidToken; AWS answers 403 InvalidAccessKeyId for it: either)
    bare = s3_client(server, world.role_creds[:2])
    denied(lambda: bare.list_objects_v2(Bucket=b), want=(400, "InvalidToken"),
           also=[(403, "InvalidAccessKeyId")], watch=world.state())


def control_client(server, creds):
    """An S3 Control client. The SDK puts the account id in front of the
    endpoint's host name ({account}.127.0.0.1), which does not resolve on
    loopback: connect to the endpoint itself, keeping the signed Host."""
    c = boto3.client("s3control", endpoint_url=server.http, aws_access_key_id=creds[0],
                     aws_secret_access_key=creds[1], region_name="us-east-1")

    def to_loopback(request, **_):
        u = urlsplit(request.url)
        request.headers["Host"] = u.netloc
        request.url = urlunsplit(u._replace(netloc=u.netloc.split(".", 1)[1]))

    c.meta.events.register("before-send.s3-control.*", to_loopback)
    return c


def test_account_level_block_public_access(world, server):
    """S3 Control's account-level Block Public Access applies to every
    bucket of the account (ORed with the bucket's own)."""
    ctl = control_client(server, MAIN)
    b = world.bucket
    with pytest.raises(ClientError) as e:
        ctl.get_public_access_block(AccountId=MAIN_ID)
    assert e.value.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"
    world.bucket_policy(allow("s3:GetObject", f"arn:aws:s3:::{b}/*", "*"))
    world.run("anon", "get", allowed=True)
    cfg = {"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
           "RestrictPublicBuckets": True}
    ctl.put_public_access_block(AccountId=MAIN_ID, PublicAccessBlockConfiguration=cfg)
    try:
        assert ctl.get_public_access_block(AccountId=MAIN_ID)["PublicAccessBlockConfiguration"] == cfg
        world.run("anon", "get", allowed=False)
        denied(lambda: world.owner.put_bucket_policy(Bucket=b, Policy=json.dumps(
            allow("s3:GetObject", f"arn:aws:s3:::{b}/*", "*"))), watch=world.state())
        # another account cannot read or change it
        alt = control_client(server, ALT)
        denied(lambda: alt.delete_public_access_block(AccountId=MAIN_ID),
               watch=lambda: ctl.get_public_access_block(AccountId=MAIN_ID)["PublicAccessBlockConfiguration"])
    finally:
        ctl.delete_public_access_block(AccountId=MAIN_ID)
        world.bucket_policy(None)
    with pytest.raises(ClientError) as e:
        ctl.get_public_access_block(AccountId=MAIN_ID)
    assert e.value.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"


def test_s3_control_operations_not_built_are_not_implemented_not_object_reads(server):
    """list-access-points (and any S3 Control operation not built) answers
    501 NotImplemented, as an S3 Control error; it used to reach the S3
    router and be read as a GetObject. A bucket named like the S3 Control
    path prefix stays an ordinary bucket."""
    ctl = control_client(server, MAIN)
    with pytest.raises(ClientError) as e:
        ctl.list_access_points(AccountId=MAIN_ID)
    assert error_of(e) == (501, "NotImplemented")
    with pytest.raises(ClientError) as e:
        ctl.get_access_point(AccountId=MAIN_ID, Name="my-ap")
    assert error_of(e) == (501, "NotImplemented")
    s3 = server.client(MAIN)
    try:
        s3.create_bucket(Bucket="v20180820")
    except ClientError as err:
        assert error_of(err)[1] == "BucketAlreadyOwnedByYou"
    s3.put_object(Bucket="v20180820", Key="accesspoint", Body=b"an object")
    assert s3.get_object(Bucket="v20180820", Key="accesspoint")["Body"].read() == b"an object"
    s3.delete_object(Bucket="v20180820", Key="accesspoint")


def test_confirm_remove_self_bucket_access_gives_the_owner_root_up(server):
    """With ConfirmRemoveSelfBucketAccess the owner's root no longer keeps
    its standing right to manage a policy that denies it (AWS)."""
    owner = server.client(MAIN)
    b = f"lockout-{uuid.uuid4().hex[:10]}"
    owner.create_bucket(Bucket=b)
    deny = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": [
        "s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"], "Resource": f"arn:aws:s3:::{b}"}]})
    owner.put_bucket_policy(Bucket=b, Policy=deny)
    assert owner.get_bucket_policy(Bucket=b)["Policy"] == deny
    owner.put_bucket_policy(Bucket=b, Policy=deny, ConfirmRemoveSelfBucketAccess=True)
    # nobody can read the policy now: the watch reads it as AccessDenied
    # before and after; a deletion would read as NoSuchBucketPolicy
    for call in (lambda: owner.get_bucket_policy(Bucket=b), lambda: owner.delete_bucket_policy(Bucket=b),
                 lambda: owner.put_bucket_policy(Bucket=b, Policy=deny)):
        denied(call, watch=bucket_state(owner, b))


def test_objects_written_by_others_belong_to_the_bucket_owner(world, server):
    """Object Ownership BucketOwnerEnforced: whoever writes (another
    account, anonymous, through a multipart upload), the bucket owner owns."""
    b = world.bucket
    world.bucket_policy(allow(["s3:PutObject"], f"arn:aws:s3:::{b}/*", "*"))
    try:
        world.clients["other_root"].put_object(Bucket=b, Key="own/alt", Body=b"x")
        world.clients["anon"].put_object(Bucket=b, Key="own/anon", Body=b"x")
        alt = world.clients["other_root"]
        up = alt.create_multipart_upload(Bucket=b, Key="own/mp")["UploadId"]
        part = alt.upload_part(Bucket=b, Key="own/mp", UploadId=up, PartNumber=1, Body=b"y")
        alt.complete_multipart_upload(Bucket=b, Key="own/mp", UploadId=up,
                                      MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    finally:
        world.bucket_policy(None)
    mine = world.owner.list_buckets()["Owner"]["ID"]
    listed = world.owner.list_objects_v2(Bucket=b, Prefix="own/", FetchOwner=True)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["own/alt", "own/anon", "own/mp"]
    assert {o["Owner"]["ID"] for o in listed} == {mine}


def test_a_recreated_bucket_does_not_inherit_the_old_policy(server):
    """The policy dies with its bucket: another account creating the same
    name later gets no grant the old owner wrote."""
    owner, alt = server.client(MAIN), server.client(ALT)
    b = f"reborn-{uuid.uuid4().hex[:10]}"
    owner.create_bucket(Bucket=b)
    owner.put_bucket_policy(Bucket=b, Policy=json.dumps(allow("s3:*", [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"],
                                                              {"AWS": f"arn:aws:iam::{ALT_ID}:root"})))
    owner.delete_bucket(Bucket=b)
    alt.create_bucket(Bucket=b)
    with pytest.raises(ClientError) as e:
        alt.get_bucket_policy(Bucket=b)
    assert error_of(e) == (404, "NoSuchBucketPolicy")
    assert alt.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is False
    alt.delete_bucket(Bucket=b)


def test_existing_object_tag_reads_the_version_the_request_names(server):
    """s3:ExistingObjectTag is the tag of the version a request names, not
    of the current object: an old secret version stays denied."""
    owner = server.client(MAIN)
    b = f"vtag-{uuid.uuid4().hex[:10]}"
    owner.create_bucket(Bucket=b)
    owner.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    old = owner.put_object(Bucket=b, Key="k", Body=b"secret", Tagging="class=secret")["VersionId"]
    new = owner.put_object(Bucket=b, Key="k", Body=b"public")["VersionId"]
    owner.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
         "Resource": f"arn:aws:s3:::{b}/*", "Condition": {"StringEquals": {"s3:ExistingObjectTag/class": "secret"}}}]}))
    assert owner.get_object(Bucket=b, Key="k")["Body"].read() == b"public"
    assert owner.get_object(Bucket=b, Key="k", VersionId=new)["Body"].read() == b"public"
    # the owner's reads of the old version's bytes are denied too: the
    # version listing (ETags, sizes) and the version's tags still show it
    denied(lambda: owner.get_object(Bucket=b, Key="k", VersionId=old),
           watch=[bucket_state(owner, b, "k"), object_state(owner, b, "k", version=old)])

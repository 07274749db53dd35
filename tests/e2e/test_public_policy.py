"""Public-ness of bucket policies as AWS judges it ("The meaning of
public"): a grant to everyone is public unless a condition pins the caller
to fixed values of a key AWS lists (source IPs no wider than /8, source
ARN/VPC/VPC endpoint/owner/account, principal account/ARN/organization,
user id, the KMS key); an `...IfExists` operator never pins (the key may be
absent), nor does a wildcard value (ArnEquals matches wildcards as ArnLike
does), a negated operator or `ForAllValues`.

Each policy of the table is judged three ways through boto3: the
IsPublic of GetBucketPolicyStatus, PutBucketPolicy under BlockPublicPolicy
(refused with 403 when public, the bucket keeps no policy), and — for a
sample — RestrictPublicBuckets stopping an anonymous read that the public
policy would grant."""
import json
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ALT, MAIN, error_of
from denial import bucket_state, denied
from test_access_matrix import s3_client

MAIN_ID = "210000000001"


def cond(op, key, *values):
    return {op: {key: list(values) if len(values) > 1 else values[0]}}


def grant(principal="*", condition=None, action="s3:GetObject", effect="Allow"):
    s = {"Effect": effect, "Principal": principal, "Action": action, "Resource": "arn:aws:s3:::BUCKET/*"}
    if condition:
        s["Condition"] = condition
    return s


PUBLIC = True
PRIVATE = False
KMS_KEY = f"arn:aws:kms:us-east-1:{MAIN_ID}:key/11111111-2222-3333-4444-555555555555"

TABLE = [
    # --- public: nothing pins the caller
    ("everyone", [grant()], PUBLIC),
    ("aws-star", [grant({"AWS": "*"})], PUBLIC),
    ("source-ip-any-v4", [grant(condition=cond("IpAddress", "aws:SourceIp", "0.0.0.0/0"))], PUBLIC),
    ("source-ip-wider-than-8", [grant(condition=cond("IpAddress", "aws:SourceIp", "10.0.0.0/7"))], PUBLIC),
    ("source-ip-any-v6", [grant(condition=cond("IpAddress", "aws:SourceIp", "::/0"))], PUBLIC),
    ("source-ip-v6-wider-than-32", [grant(condition=cond("IpAddress", "aws:SourceIp", "2001:db8::/31"))], PUBLIC),
    ("source-ip-one-narrow-one-wide",
     [grant(condition=cond("IpAddress", "aws:SourceIp", "10.1.0.0/16", "0.0.0.0/1"))], PUBLIC),
    ("principal-account-ifexists",
     [grant(condition=cond("StringEqualsIfExists", "aws:PrincipalAccount", MAIN_ID))], PUBLIC),
    ("source-vpc-ifexists", [grant(condition=cond("StringEqualsIfExists", "aws:SourceVpc", "vpc-111"))], PUBLIC),
    ("source-vpce-ifexists", [grant(condition=cond("StringEqualsIfExists", "aws:SourceVpce", "vpce-111"))], PUBLIC),
    ("source-account-ignorecase-ifexists",
     [grant(condition=cond("StringEqualsIgnoreCaseIfExists", "aws:SourceAccount", MAIN_ID))], PUBLIC),
    ("source-arn-arnlike-ifexists",
     [grant(condition=cond("ArnLikeIfExists", "aws:SourceArn", "arn:aws:s3:::somewhere"))], PUBLIC),
    ("source-ip-ifexists", [grant(condition=cond("IpAddressIfExists", "aws:SourceIp", "10.1.0.0/16"))], PUBLIC),
    ("principal-arn-arnequals-wildcard",
     [grant(condition=cond("ArnEquals", "aws:PrincipalArn", "arn:aws:iam::*:*"))], PUBLIC),
    ("principal-arn-arnlike-wildcard-account",
     [grant(condition=cond("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/admin"))], PUBLIC),
    ("source-vpc-stringlike-wildcard", [grant(condition=cond("StringLike", "aws:SourceVpc", "vpc-*"))], PUBLIC),
    ("source-vpc-not-equals", [grant(condition=cond("StringNotEquals", "aws:SourceVpc", "vpc-111"))], PUBLIC),
    ("source-vpc-forallvalues",
     [grant(condition=cond("ForAllValues:StringEquals", "aws:SourceVpc", "vpc-111"))], PUBLIC),
    ("not-ip-address", [grant(condition=cond("NotIpAddress", "aws:SourceIp", "10.0.0.0/8"))], PUBLIC),
    ("secure-transport-only", [grant(condition=cond("Bool", "aws:SecureTransport", "true"))], PUBLIC),
    ("prefix-is-not-a-caller", [grant(condition=cond("StringEquals", "s3:prefix", "home/"))], PUBLIC),
    ("referer-is-not-a-caller", [grant(condition=cond("StringEquals", "aws:Referer", "https://example.com"))], PUBLIC),
    ("user-agent-is-not-a-caller", [grant(condition=cond("StringEquals", "aws:UserAgent", "curl"))], PUBLIC),
    ("userid-any", [grant(condition=cond("StringLike", "aws:userid", "*"))], PUBLIC),
    ("userid-any-role", [grant(condition=cond("StringLike", "aws:userid", "AROA*:*"))], PUBLIC),
    ("null-check-is-not-a-pin", [grant(condition=cond("Null", "aws:SourceVpc", "false"))], PUBLIC),
    ("time-is-not-a-caller",
     [grant(condition=cond("DateGreaterThan", "aws:CurrentTime", "2020-01-01T00:00:00Z"))], PUBLIC),
    ("one-pinned-one-open",
     [grant(condition=cond("StringEquals", "aws:SourceVpc", "vpc-111")), grant(action="s3:PutObject")], PUBLIC),
    ("deny-then-open-allow", [grant(effect="Deny", action="s3:DeleteObject"), grant()], PUBLIC),
    ("kms-key-ifexists", [grant(action="s3:PutObject", condition=cond(
        "StringEqualsIfExists", "s3:x-amz-server-side-encryption-aws-kms-key-id", KMS_KEY))], PUBLIC),
    # --- not public: a fixed principal, or a condition that pins the caller
    ("account-id", [grant({"AWS": MAIN_ID})], PRIVATE),
    ("account-root-arn", [grant({"AWS": f"arn:aws:iam::{MAIN_ID}:root"})], PRIVATE),
    ("service-principal", [grant({"Service": "logging.s3.amazonaws.com"}, action="s3:PutObject")], PRIVATE),
    ("canonical-user", [grant({"CanonicalUser": "a" * 64})], PRIVATE),
    ("source-vpc", [grant(condition=cond("StringEquals", "aws:SourceVpc", "vpc-111"))], PRIVATE),
    ("source-vpce", [grant(condition=cond("StringEquals", "aws:SourceVpce", "vpce-111"))], PRIVATE),
    ("source-ip-16", [grant(condition=cond("IpAddress", "aws:SourceIp", "10.1.0.0/16"))], PRIVATE),
    ("source-ip-8", [grant(condition=cond("IpAddress", "aws:SourceIp", "10.0.0.0/8"))], PRIVATE),
    ("source-ip-host", [grant(condition=cond("IpAddress", "aws:SourceIp", "192.0.2.1/32"))], PRIVATE),
    ("source-ip-v6-48", [grant(condition=cond("IpAddress", "aws:SourceIp", "2001:db8::/48"))], PRIVATE),
    ("principal-account", [grant(condition=cond("StringEquals", "aws:PrincipalAccount", MAIN_ID))], PRIVATE),
    ("principal-arn-fixed",
     [grant(condition=cond("ArnEquals", "aws:PrincipalArn", f"arn:aws:iam::{MAIN_ID}:root"))], PRIVATE),
    ("principal-arn-like-fixed",
     [grant(condition=cond("ArnLike", "aws:PrincipalArn", f"arn:aws:iam::{MAIN_ID}:role/admin"))], PRIVATE),
    ("principal-org", [grant(condition=cond("StringEquals", "aws:PrincipalOrgID", "o-abc123"))], PRIVATE),
    ("source-account", [grant(condition=cond("StringEquals", "aws:SourceAccount", MAIN_ID))], PRIVATE),
    ("source-owner", [grant(condition=cond("StringEquals", "aws:SourceOwner", MAIN_ID))], PRIVATE),
    ("source-arn", [grant(condition=cond("ArnEquals", "aws:SourceArn", "arn:aws:s3:::somewhere"))], PRIVATE),
    ("userid-fixed", [grant(condition=cond("StringEquals", "aws:userid", "AIDAEXAMPLE1234567890"))], PRIVATE),
    ("userid-one-roles-sessions", [grant(condition=cond("StringLike", "aws:userid", "AROAEXAMPLE123:*"))], PRIVATE),
    ("kms-key-fixed", [grant(action="s3:PutObject", condition=cond(
        "StringEquals", "s3:x-amz-server-side-encryption-aws-kms-key-id", KMS_KEY))], PRIVATE),
    ("forany-source-vpc", [grant(condition=cond("ForAnyValue:StringEquals", "aws:SourceVpc", "vpc-111"))], PRIVATE),
    ("pinned-and-secure", [grant(condition={**cond("Bool", "aws:SecureTransport", "true"),
                                            **cond("StringEquals", "aws:SourceVpc", "vpc-111")})], PRIVATE),
    ("deny-only", [grant(effect="Deny")], PRIVATE),
]


def policy_for(bucket, statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements}).replace("BUCKET", bucket)


@pytest.fixture(scope="module")
def buckets(server):
    s3 = server.client(MAIN)
    u = uuid.uuid4().hex[:8]
    open_b, blocked = f"pub-open-{u}", f"pub-blocked-{u}"
    for b in (open_b, blocked):
        s3.create_bucket(Bucket=b)
    # new buckets block public access; one bucket lifts it to judge IsPublic
    s3.delete_public_access_block(Bucket=open_b)
    s3.put_public_access_block(Bucket=blocked, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": False})
    return s3, open_b, blocked


def test_the_table_is_big_enough():
    assert len(TABLE) >= 40, len(TABLE)


@pytest.mark.parametrize("name,statements,public", TABLE, ids=[t[0] for t in TABLE])
def test_public_judgement(buckets, name, statements, public):
    s3, open_b, blocked = buckets
    s3.put_bucket_policy(Bucket=open_b, Policy=policy_for(open_b, statements))
    assert s3.get_bucket_policy_status(Bucket=open_b)["PolicyStatus"]["IsPublic"] is public
    s3.delete_bucket_policy(Bucket=open_b)
    # under BlockPublicPolicy: a public policy is refused and nothing is stored
    text = policy_for(blocked, statements)
    if public:
        denied(lambda: s3.put_bucket_policy(Bucket=blocked, Policy=text), watch=bucket_state(s3, blocked))
        with pytest.raises(ClientError) as e:
            s3.get_bucket_policy(Bucket=blocked)
        assert error_of(e) == (404, "NoSuchBucketPolicy")
    else:
        s3.put_bucket_policy(Bucket=blocked, Policy=text)
        s3.delete_bucket_policy(Bucket=blocked)


@pytest.mark.parametrize("name,caller", [("principal-account-ifexists", "anonymous"),
                                         ("source-vpc-ifexists", "anonymous"),
                                         ("principal-arn-arnequals-wildcard", "other account")])
def test_restrict_public_buckets_stops_what_a_public_policy_grants(server, name, caller):
    """The policies an earlier build misjudged as non-public let anonymous
    or foreign-account callers in despite RestrictPublicBuckets."""
    statements = dict((t[0], t[1]) for t in TABLE)[name]
    s3 = server.client(MAIN)
    b = f"pub-rpb-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"secret")
    s3.delete_public_access_block(Bucket=b)
    s3.put_bucket_policy(Bucket=b, Policy=policy_for(b, statements))
    anon = s3_client(server) if caller == "anonymous" else server.client(ALT)
    assert anon.get_object(Bucket=b, Key="k")["Body"].read() == b"secret"  # the policy is public indeed
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True})
    denied(lambda: anon.get_object(Bucket=b, Key="k"), watch=bucket_state(s3, b, "k"))
    # the owner's own account still reads
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"secret"

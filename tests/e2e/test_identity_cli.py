"""Identity through the AWS CLI verbatim: IAM users and keys, STS, the
seed's two bucket policies over both listeners, MFA-authenticated
sessions, and pre-signed URLs evaluated as their signer at request time."""
import base64
import hashlib
import hmac
import json
import os
import re
import struct
import subprocess
import time
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import MAIN, error_of
from denial import bucket_state, denied, iam_state
from test_access_matrix import iam_client, s3_client, sts_client
from test_condition_keys import key_state, keys


def aws(server, creds, *args, secure=False, token=None, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=creds[0], AWS_SECRET_ACCESS_KEY=creds[1],
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    env.pop("AWS_SESSION_TOKEN", None)
    if token:
        env["AWS_SESSION_TOKEN"] = token
    ep = ["--endpoint-url", server.https if secure else server.http]
    if secure:
        ep += ["--ca-bundle", server.ca]
    r = subprocess.run(["aws", *ep, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


# the AWS CLI prints an error's code, not its status: the status AWS
# documents for each code a refusal below can show
STATUS_OF = {"AccessDenied": 403, "InvalidAccessKeyId": 403, "SignatureDoesNotMatch": 403, "InvalidToken": 400}


class Answer(tuple):
    """(status, code) of an AWS CLI command, for denial.denied, keeping its stderr."""


def answer(r) -> Answer:
    """What a CLI command was answered, read from its stderr (`An error
    occurred (CODE) when calling ...`); a bodiless HEAD refusal shows its
    status as the code. A code not in STATUS_OF gets no status, so
    denied() fails and shows it."""
    if r.returncode == 0:
        out = Answer((200, ""))
    elif m := re.search(r"An error occurred \(([^)]*)\)", r.stderr):
        code = m.group(1)
        out = Answer((int(code), "") if code.isdigit() else (STATUS_OF.get(code), code))
    else:
        out = Answer((r.returncode, r.stderr))
    out.stderr = r.stderr
    return out


def account_buckets(owner):
    """A reader of the account's bucket list (all a ListBuckets names)."""
    return lambda: sorted(b["Name"] for b in owner.list_buckets()["Buckets"])


def mfa_state(iam, user):
    """A reader of `user`'s IAM state and its enabled MFA devices."""
    base = iam_state(iam, user)
    return lambda: (base(), sorted(d["SerialNumber"] for d in iam.list_mfa_devices(UserName=user)["MFADevices"]))


def totp(seed_b32: str, at: float) -> str:
    key = base64.b32decode(seed_b32 + "=" * (-len(seed_b32) % 8))
    msg = struct.pack(">Q", int(at) // 30)
    h = hmac.new(key, msg, hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def test_iam_and_sts_commands_work_verbatim(server, tmp_path):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    user = json.loads(aws(server, MAIN, "iam", "create-user", "--user-name", name).stdout)["User"]
    assert user["Arn"] == f"arn:aws:iam::210000000001:user/{name}" and user["UserId"].startswith("AIDA")
    key = json.loads(aws(server, MAIN, "iam", "create-access-key", "--user-name", name).stdout)["AccessKey"]
    creds = (key["AccessKeyId"], key["SecretAccessKey"])
    assert key["Status"] == "Active" and len(creds[1]) == 40
    listed = json.loads(aws(server, MAIN, "iam", "list-access-keys", "--user-name", name).stdout)
    assert [k["AccessKeyId"] for k in listed["AccessKeyMetadata"]] == [creds[0]]
    # the secret is shown once and never again
    assert creds[1] not in json.dumps(listed)
    me = json.loads(aws(server, creds, "sts", "get-caller-identity").stdout)
    assert me == {"UserId": user["UserId"], "Account": "210000000001", "Arn": user["Arn"]}
    # a user with no policy may do nothing in S3
    owner, root_iam = server.client(MAIN), iam_client(server, MAIN)
    denied(lambda: answer(aws(server, creds, "s3", "ls", check=False)), watch=account_buckets(owner))
    pol = tmp_path / "p.json"
    pol.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "s3:CreateBucket", "s3:PutObject", "s3:GetObject",
                                       "s3:ListBucket", "s3:DeleteObject", "s3:DeleteBucket"], "Resource": "*"}]}))
    aws(server, MAIN, "iam", "put-user-policy", "--user-name", name, "--policy-name", "s3",
        "--policy-document", f"file://{pol}")
    got = json.loads(aws(server, MAIN, "iam", "get-user-policy", "--user-name", name, "--policy-name", "s3").stdout)
    assert got["PolicyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert json.loads(aws(server, MAIN, "iam", "list-user-policies", "--user-name", name).stdout)["PolicyNames"] == ["s3"]
    b = f"cli-{uuid.uuid4().hex[:10]}"
    aws(server, creds, "s3", "mb", f"s3://{b}")
    # session credentials act as the user
    sess = json.loads(aws(server, creds, "sts", "get-session-token", "--duration-seconds", "900").stdout)["Credentials"]
    assert sess["AccessKeyId"].startswith("ASIA")
    s = (sess["AccessKeyId"], sess["SecretAccessKey"])
    me2 = json.loads(aws(server, s, "sts", "get-caller-identity", token=sess["SessionToken"]).stdout)
    assert me2["Arn"] == user["Arn"]
    aws(server, s, "s3", "ls", f"s3://{b}", token=sess["SessionToken"])
    # without MFA, GetSessionToken credentials do not reach IAM (AWS)
    r = denied(lambda: answer(aws(server, s, "iam", "list-users", token=sess["SessionToken"], check=False)),
               watch=iam_state(root_iam, name))
    assert "without MFA" in r.stderr
    # a wrong token is refused
    denied(lambda: answer(aws(server, s, "s3", "ls", f"s3://{b}", token=sess["SessionToken"][:-4] + "AAAA",
                              check=False)), want=(400, "InvalidToken"), watch=bucket_state(owner, b))
    # deactivating the key takes effect at once; deleting it too
    aws(server, MAIN, "iam", "update-access-key", "--user-name", name, "--access-key-id", creds[0], "--status", "Inactive")
    denied(lambda: answer(aws(server, creds, "s3", "ls", check=False)), want=(403, "InvalidAccessKeyId"),
           watch=account_buckets(owner))
    aws(server, MAIN, "iam", "update-access-key", "--user-name", name, "--access-key-id", creds[0], "--status", "Active")
    aws(server, creds, "s3", "rb", f"s3://{b}")
    # at most two keys per user
    aws(server, MAIN, "iam", "create-access-key", "--user-name", name)
    r = aws(server, MAIN, "iam", "create-access-key", "--user-name", name, check=False)
    assert "LimitExceeded" in r.stderr
    # a user with keys cannot be deleted; errors are IAM's
    r = aws(server, MAIN, "iam", "delete-user", "--user-name", name, check=False)
    assert "DeleteConflict" in r.stderr
    r = aws(server, MAIN, "iam", "get-user", "--user-name", "no-such-user", check=False)
    assert "NoSuchEntity" in r.stderr
    r = aws(server, MAIN, "iam", "put-user-policy", "--user-name", name, "--policy-name", "bad",
            "--policy-document", '{"Statement":[{"Effect":"Allow"}]}', check=False)
    assert "MalformedPolicyDocument" in r.stderr
    # users cannot manage IAM without a policy allowing it
    denied(lambda: answer(aws(server, creds, "iam", "create-user", "--user-name", "escalate", check=False)),
           watch=iam_state(root_iam, name))


def test_bootstrap_users_start_with_known_keys_and_policies(server):
    boot = ("AKIAE2EBOOTREADER001", "E2eBootReaderSecret000000000000000000001")
    b = f"e2e-boot-{uuid.uuid4().hex[:8]}"
    owner = server.client(MAIN)
    owner.create_bucket(Bucket=b)
    owner.put_object(Bucket=b, Key="k", Body=b"boot")
    c = s3_client(server, boot)
    assert c.get_object(Bucket=b, Key="k")["Body"].read() == b"boot"
    denied(lambda: c.put_object(Bucket=b, Key="w", Body=b"x"), watch=bucket_state(owner, b, "w"))


SECURE_TRANSPORT = """{"Version":"2012-10-17","Statement":[{"Sid":"RestrictToTLSRequestsOnly","Action":"s3:GetObject",
"Effect":"Deny","Resource":["arn:aws:s3:::BUCKET","arn:aws:s3:::BUCKET/*"],
"Condition":{"Bool":{"aws:SecureTransport":"false"}},"Principal":"*"}]}"""

FORCED_ENCRYPTION = """{"Version":"2012-10-17","Id":"PutObjPolicy","Statement":[
{"Sid":"DenyIncorrectEncryptionHeader","Effect":"Deny","Principal":"*","Action":"s3:PutObject",
 "Resource":"arn:aws:s3:::BUCKET/*","Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}},
{"Sid":"DenyUnEncryptedObjectUploads","Effect":"Deny","Principal":"*","Action":"s3:PutObject",
 "Resource":"arn:aws:s3:::BUCKET/*","Condition":{"Null":{"s3:x-amz-server-side-encryption":"true"}}}]}"""

SSE_C_REQUIRED = """{"Version":"2012-10-17","Statement":[{"Sid":"RequireSSEC","Effect":"Deny","Principal":"*",
"Action":"s3:PutObject","Resource":"arn:aws:s3:::BUCKET/*",
"Condition":{"Null":{"s3:x-amz-server-side-encryption-customer-algorithm":"true"}}}]}"""


def test_seed_secure_transport_policy(server, tmp_path):
    b = f"seed-tls-{uuid.uuid4().hex[:8]}"
    aws(server, MAIN, "s3", "mb", f"s3://{b}")
    f = tmp_path / "f"
    f.write_bytes(b"seed")
    aws(server, MAIN, "s3", "cp", str(f), f"s3://{b}/k")
    aws(server, MAIN, "s3api", "put-bucket-policy", "--bucket", b, "--policy", SECURE_TRANSPORT.replace("BUCKET", b))
    # the policy denies reads over plain HTTP, the owner's too: the state is read over HTTPS
    watch = bucket_state(server.client(MAIN, secure=True), b, "k")
    for _ in range(3):
        # the CLI's first request is a HeadObject: a bodiless 403
        denied(lambda: answer(aws(server, MAIN, "s3", "cp", f"s3://{b}/k", "-", check=False)), want=(403, ""),
               watch=watch)
        assert aws(server, MAIN, "s3", "cp", f"s3://{b}/k", "-", secure=True).stdout == "seed"
    # plain HTTP through a curl pre-signed URL fails the same way; HTTPS works
    url = aws(server, MAIN, "s3", "presign", f"s3://{b}/k").stdout.strip()
    denied(lambda: requests.get(url), watch=watch)
    url = aws(server, MAIN, "s3", "presign", f"s3://{b}/k", secure=True).stdout.strip()
    assert requests.get(url, verify=server.ca).content == b"seed"
    aws(server, MAIN, "s3", "rm", f"s3://{b}/k", secure=True)
    aws(server, MAIN, "s3api", "delete-bucket-policy", "--bucket", b)
    aws(server, MAIN, "s3", "rb", f"s3://{b}")


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_seed_forced_encryption_policy(server, tmp_path, secure):
    b = f"seed-kms-{uuid.uuid4().hex[:8]}"
    aws(server, MAIN, "s3", "mb", f"s3://{b}")
    aws(server, MAIN, "s3api", "put-bucket-policy", "--bucket", b, "--policy", FORCED_ENCRYPTION.replace("BUCKET", b))
    f = tmp_path / "f"
    f.write_bytes(b"x" * 1000)
    # no header: denied, although the bucket's default encryption (SSE-S3)
    # would have encrypted it; policies are evaluated first
    owner = server.client(MAIN, secure=secure)
    denied(lambda: answer(aws(server, MAIN, "s3", "cp", str(f), f"s3://{b}/plain", secure=secure, check=False)),
           watch=bucket_state(owner, b, "plain"))
    denied(lambda: answer(aws(server, MAIN, "s3", "cp", str(f), f"s3://{b}/aes", "--sse", "AES256", secure=secure,
                              check=False)), watch=bucket_state(owner, b, "aes"))
    aws(server, MAIN, "s3", "cp", str(f), f"s3://{b}/kms", "--sse", "aws:kms", secure=secure)
    head = json.loads(aws(server, MAIN, "s3api", "head-object", "--bucket", b, "--key", "kms", secure=secure).stdout)
    assert head["ServerSideEncryption"] == "aws:kms"
    # nothing was stored by the refused writes
    keys = json.loads(aws(server, MAIN, "s3api", "list-objects-v2", "--bucket", b).stdout)["Contents"]
    assert [k["Key"] for k in keys] == ["kms"]
    aws(server, MAIN, "s3", "rm", f"s3://{b}/kms")
    aws(server, MAIN, "s3api", "delete-bucket-policy", "--bucket", b)
    aws(server, MAIN, "s3", "rb", f"s3://{b}")


def test_seed_sse_c_required_policy(server, tmp_path):
    b = f"seed-ssec-{uuid.uuid4().hex[:8]}"
    aws(server, MAIN, "s3", "mb", f"s3://{b}")
    aws(server, MAIN, "s3api", "put-bucket-policy", "--bucket", b, "--policy", SSE_C_REQUIRED.replace("BUCKET", b))
    f = tmp_path / "f"
    f.write_bytes(b"c" * 100)
    denied(lambda: answer(aws(server, MAIN, "s3", "cp", str(f), f"s3://{b}/plain", secure=True, check=False)),
           watch=bucket_state(server.client(MAIN, secure=True), b, "plain"))
    key = "0123456789abcdef0123456789abcdef"
    aws(server, MAIN, "s3", "cp", str(f), f"s3://{b}/c", "--sse-c", "AES256", "--sse-c-key", key, secure=True)
    aws(server, MAIN, "s3", "rm", f"s3://{b}/c", secure=True)
    aws(server, MAIN, "s3api", "delete-bucket-policy", "--bucket", b)
    aws(server, MAIN, "s3", "rb", f"s3://{b}")


def test_mfa_authenticated_sessions(server):
    iam = iam_client(server, MAIN)
    name = f"mfa-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    creds = (k["AccessKeyId"], k["SecretAccessKey"])
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    seed = dev["Base32StringSeed"].decode() if isinstance(dev["Base32StringSeed"], bytes) else dev["Base32StringSeed"]
    serial = dev["SerialNumber"]
    now = time.time()
    iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1=totp(seed, now - 30),
                          AuthenticationCode2=totp(seed, now))
    assert [d["SerialNumber"] for d in iam.list_mfa_devices(UserName=name)["MFADevices"]] == [serial]
    b = f"mfa-{uuid.uuid4().hex[:8]}"
    owner = server.client(MAIN)
    owner.create_bucket(Bucket=b)
    owner.put_object(Bucket=b, Key="k", Body=b"mfa")
    iam.put_user_policy(UserName=name, PolicyName="mfa", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                "Resource": f"arn:aws:s3:::{b}/*",
                                                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"},
                                                              "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}}]}))
    sts = sts_client(server, creds)
    plain = sts.get_session_token(DurationSeconds=900)["Credentials"]
    c = s3_client(server, (plain["AccessKeyId"], plain["SecretAccessKey"]), plain["SessionToken"])
    denied(lambda: c.get_object(Bucket=b, Key="k"), watch=bucket_state(owner, b, "k"))
    denied(lambda: sts.get_session_token(SerialNumber=serial, TokenCode="000000"), watch=mfa_state(iam, name))
    # a code not yet used (the enrolment used this and the previous step)
    time.sleep(30 - time.time() % 30 + 0.5)
    m = sts.get_session_token(SerialNumber=serial, TokenCode=totp(seed, time.time()))["Credentials"]
    c = s3_client(server, (m["AccessKeyId"], m["SecretAccessKey"]), m["SessionToken"])
    assert c.get_object(Bucket=b, Key="k")["Body"].read() == b"mfa"
    # long-term keys never carry MFA
    denied(lambda: s3_client(server, creds).get_object(Bucket=b, Key="k"), watch=bucket_state(owner, b, "k"))


def test_presigned_urls_carry_the_signers_rights_at_request_time(server):
    iam = iam_client(server, MAIN)
    name = f"pre-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    creds = (k["AccessKeyId"], k["SecretAccessKey"])
    b = f"pre-{uuid.uuid4().hex[:8]}"
    owner = server.client(MAIN)
    owner.create_bucket(Bucket=b)
    owner.put_object(Bucket=b, Key="k", Body=b"pre")
    doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::{b}/*"}]})
    iam.put_user_policy(UserName=name, PolicyName="rw", PolicyDocument=doc)
    c = s3_client(server, creds)
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=300)
    assert requests.get(url).content == b"pre"
    watch = bucket_state(owner, b, "k", "k2", "up")
    # tampered query: another key with the same signature
    denied(lambda: requests.get(url.replace("/k?", "/k2?")), want=(403, "SignatureDoesNotMatch"), watch=watch)
    # unsigned x-amz-* header added to a pre-signed request
    denied(lambda: requests.get(url, headers={"x-amz-server-side-encryption-customer-algorithm": "AES256"}),
           watch=watch)
    put = c.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "up"}, ExpiresIn=300)
    r = denied(lambda: requests.put(put, data=b"x", headers={"x-amz-tagging": "a=b"}), watch=watch)
    assert "not signed" in r.text
    assert requests.put(put, data=b"x").status_code == 200
    # policy changed after signing: the URL loses its power at once
    iam.delete_user_policy(UserName=name, PolicyName="rw")
    denied(lambda: requests.get(url), watch=watch)
    iam.put_user_policy(UserName=name, PolicyName="rw", PolicyDocument=doc)
    assert requests.get(url).status_code == 200
    # deactivated, then deleted key
    iam.update_access_key(UserName=name, AccessKeyId=creds[0], Status="Inactive")
    denied(lambda: requests.get(url), want=(403, "InvalidAccessKeyId"), watch=watch)
    iam.update_access_key(UserName=name, AccessKeyId=creds[0], Status="Active")
    assert requests.get(url).status_code == 200
    iam.delete_access_key(UserName=name, AccessKeyId=creds[0])
    denied(lambda: requests.get(url), want=(403, "InvalidAccessKeyId"), watch=watch)
    # expiry
    k2 = iam.create_access_key(UserName=name)["AccessKey"]
    c2 = s3_client(server, (k2["AccessKeyId"], k2["SecretAccessKey"]))
    short = c2.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=1)
    time.sleep(2)
    r = denied(lambda: requests.get(short), watch=watch)
    assert "expired" in r.text
    week = c2.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=604801)
    denied(lambda: requests.get(week), want=(400, "AuthorizationQueryParametersError"), watch=watch)


def test_kms_use_by_users_needs_their_identity_policies(server):
    """A key policy naming the account (the default) delegates to IAM: a
    user needs an identity policy for the key, directly and through S3."""
    iam = iam_client(server, MAIN)
    name = f"kmsu-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    creds = (k["AccessKeyId"], k["SecretAccessKey"])
    import boto3
    owner_kms = boto3.client("kms", endpoint_url=server.http, aws_access_key_id=MAIN[0],
                             aws_secret_access_key=MAIN[1], region_name="us-east-1")
    key = owner_kms.create_key()["KeyMetadata"]["Arn"]
    kms = boto3.client("kms", endpoint_url=server.http, aws_access_key_id=creds[0],
                       aws_secret_access_key=creds[1], region_name="us-east-1")
    b = f"kmsu-{uuid.uuid4().hex[:8]}"
    owner = server.client(MAIN)
    owner.create_bucket(Bucket=b)
    iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
                                                "Resource": f"arn:aws:s3:::{b}/*"}]}))
    s3 = s3_client(server, creds)
    # KMS answers a refusal 400 AccessDeniedException (AWS)
    denied(lambda: kms.encrypt(KeyId=key, Plaintext=b"x"), want=(400, "AccessDeniedException"),
           watch=key_state(owner_kms, key))
    denied(lambda: kms.list_keys(), want=(400, "AccessDeniedException"), watch=keys(owner_kms))
    denied(lambda: s3.put_object(Bucket=b, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key),
           watch=[bucket_state(owner, b, "k"), key_state(owner_kms, key)])
    # nothing was stored
    assert "Contents" not in owner.list_objects_v2(Bucket=b)
    iam.put_user_policy(UserName=name, PolicyName="kms", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt",
                                                                           "kms:GenerateDataKey"], "Resource": key}]}))
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    s3.put_object(Bucket=b, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"x"
    # the owner's root reads it without any identity policy
    assert owner.get_object(Bucket=b, Key="k")["Body"].read() == b"x"


def test_iam_entities_lifecycle(server):
    """Renames keep keys working, names are case-insensitive, lists sort
    without regard to case and paginate, deletions conflict as AWS's, and
    AWS managed policies grant what AWS's documents say."""
    iam = iam_client(server, MAIN)
    path = f"/t{uuid.uuid4().hex[:6]}/"
    names = ["aa", "Ab", "ac", "Ad"]
    for n in reversed(names):
        iam.create_user(UserName=f"{n}{path[1:-1]}", Path=path)
    pages = iam.get_paginator("list_users").paginate(PathPrefix=path, PaginationConfig={"PageSize": 1})
    listed = [u["UserName"] for page in pages for u in page["Users"]]
    assert listed == [f"{n}{path[1:-1]}" for n in names]
    u = f"aa{path[1:-1]}"
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName=u.upper())
    assert error_of(e) == (409, "EntityAlreadyExists")
    assert iam.get_user(UserName=u.upper())["User"]["UserName"] == u
    k = iam.create_access_key(UserName=u)["AccessKey"]
    creds = (k["AccessKeyId"], k["SecretAccessKey"])
    iam.attach_user_policy(UserName=u, PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    b = f"ent-{uuid.uuid4().hex[:8]}"
    server.client(MAIN).create_bucket(Bucket=b)
    c = s3_client(server, creds)
    c.list_objects_v2(Bucket=b)
    denied(lambda: c.put_object(Bucket=b, Key="x", Body=b"x"), watch=bucket_state(server.client(MAIN), b, "x"))
    renamed = f"zz{path[1:-1]}"
    iam.update_user(UserName=u, NewUserName=renamed)
    assert sts_client(server, creds).get_caller_identity()["Arn"].endswith(f":user{path}{renamed}")
    c.list_objects_v2(Bucket=b)
    attached = iam.list_attached_user_policies(UserName=renamed)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonS3ReadOnlyAccess"]
    g = f"g{uuid.uuid4().hex[:6]}"
    iam.create_group(GroupName=g, Path=path)
    iam.add_user_to_group(GroupName=g, UserName=renamed)
    assert [x["UserName"] for x in iam.get_group(GroupName=g)["Users"]] == [renamed]
    with pytest.raises(ClientError) as e:
        iam.delete_group(GroupName=g)
    assert error_of(e) == (409, "DeleteConflict")
    iam.remove_user_from_group(GroupName=g, UserName=renamed)
    iam.delete_group(GroupName=g)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                        "Principal": {"AWS": "arn:aws:iam::210000000001:root"}}]})
    r = f"r{uuid.uuid4().hex[:6]}"
    iam.create_role(RoleName=r, Path=path, AssumeRolePolicyDocument=trust, Description="d")
    iam.update_role(RoleName=r, MaxSessionDuration=7200)
    got = iam.get_role(RoleName=r)["Role"]
    assert got["MaxSessionDuration"] == 7200 and got["Description"] == "d"
    assert got["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == "sts:AssumeRole"
    iam.put_role_policy(RoleName=r, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    with pytest.raises(ClientError) as e:
        iam.delete_role(RoleName=r)
    assert error_of(e) == (409, "DeleteConflict")
    iam.delete_role_policy(RoleName=r, PolicyName="p")
    iam.delete_role(RoleName=r)
    summary = iam.get_account_summary()["SummaryMap"]
    assert summary["AccessKeysPerUserQuota"] == 2 and summary["Users"] >= 4
    # the root may hold extra access keys of its own
    rk = iam.create_access_key()["AccessKey"]
    root2 = sts_client(server, (rk["AccessKeyId"], rk["SecretAccessKey"])).get_caller_identity()
    assert root2["Arn"] == "arn:aws:iam::210000000001:root"
    iam.delete_access_key(AccessKeyId=rk["AccessKeyId"])


def test_strongroom_presign_with_session_credentials(server):
    """`strongroom presign` signs with AWS_* credentials, temporary ones
    included (X-Amz-Security-Token in the URL)."""
    from conftest import binary
    owner = server.client(MAIN)
    b = f"pst-{uuid.uuid4().hex[:8]}"
    owner.create_bucket(Bucket=b)
    owner.put_object(Bucket=b, Key="k", Body=b"session")
    c = sts_client(server, MAIN).get_session_token(DurationSeconds=900)["Credentials"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_ROOT", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID=c["AccessKeyId"], AWS_SECRET_ACCESS_KEY=c["SecretAccessKey"],
               AWS_SESSION_TOKEN=c["SessionToken"])
    url = subprocess.run([binary(), "presign", f"s3://{b}/k", "--endpoint", server.http], env=env,
                         check=True, capture_output=True, text=True).stdout.strip()
    assert "X-Amz-Security-Token=" in url
    assert requests.get(url).content == b"session"
    # the token is part of the signature: another one breaks it
    denied(lambda: requests.get(url.replace("X-Amz-Security-Token=", "X-Amz-Security-Token=x")),
           want=(403, "SignatureDoesNotMatch"), watch=bucket_state(owner, b, "k"))


def test_a_query_api_parameter_given_twice_is_refused(server):
    """One reading of an IAM/STS form body: `UserName` twice (one harmless,
    one a victim) is refused, not resolved by whichever copy comes last,
    and nothing changes."""
    from sigv4 import sign
    iam = iam_client(server, MAIN)
    mine, victim = f"dup-a-{uuid.uuid4().hex[:6]}", f"dup-b-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=victim)
    body = f"Action=DeleteUser&Version=2010-05-08&UserName={mine}&UserName={victim}".encode()
    url = f"{server.http}/"
    hs, *_ = sign("POST", url, MAIN, hashlib.sha256(body).hexdigest(),
                  {"content-type": "application/x-www-form-urlencoded"}, service="iam")
    r = requests.post(url, data=body, headers=hs, timeout=10)
    assert r.status_code == 400, r.text
    assert "<Code>ValidationError</Code>" in r.text
    assert iam.get_user(UserName=victim)["User"]["UserName"] == victim


def test_assume_role_session_policies_are_checked_when_given(server):
    """AssumeRole's `Policy` must be a valid identity policy of at most
    2,048 characters and each `PolicyArns` ARN must exist (AWS)."""
    iam = iam_client(server, MAIN)
    r = f"sp{uuid.uuid4().hex[:6]}"
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                        "Principal": {"AWS": "arn:aws:iam::210000000001:root"}}]})
    arn = iam.create_role(RoleName=r, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    # the account root may not assume roles (AWS): an IAM user does
    u = f"sp-user-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=u)
    iam.put_user_policy(UserName=u, PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn}]}))
    k = iam.create_access_key(UserName=u)["AccessKey"]
    sts = sts_client(server, (k["AccessKeyId"], k["SecretAccessKey"]))
    cases = [
        ({"Policy": "{"}, (400, "MalformedPolicyDocument")),
        ({"Policy": json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::" + "x" * 2100}]})},
         (400, "PackedPolicyTooLarge")),
        ({"PolicyArns": [{"arn": "arn:aws:iam::210000000001:policy/no-such-policy"}]}, (404, "NoSuchEntity")),
    ]
    for extra, want in cases:
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=arn, RoleSessionName="sp", **extra)
        assert error_of(e) == want, extra
    ok = sts.assume_role(RoleArn=arn, RoleSessionName="sp", PolicyArns=[
        {"arn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}])
    assert ok["Credentials"]["AccessKeyId"].startswith("ASIA")
    iam.delete_role(RoleName=r)

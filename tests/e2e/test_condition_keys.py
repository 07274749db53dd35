"""Every condition key the control plane documents (IAM_CONDITION_KEYS in
the server's query API, kms::policy::CONDITION_KEYS) is set on the
requests it applies to: for each key, an identity policy that Denies the
action under a condition on that key blocks it, nothing changes, and the
same action without the condition's value goes through. Also: an explicit
Deny in the caller's identity policies wins over a key policy that names
the caller, and UpdateAlias needs the alias, the key it names now and the
new key."""
import json
import uuid

import pytest

from conftest import MAIN
from denial import bucket_state, denied, iam_state
from test_access_matrix import iam_client, s3_client
from test_bucket_key_authz import svc

MAIN_ID = "210000000001"


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def user(server, policy):
    iam = iam_client(server, MAIN)
    name = f"ck-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return name, (k["AccessKeyId"], k["SecretAccessKey"])


# KMS answers a refusal 400 AccessDeniedException (AWS); IAM and S3 403 AccessDenied
KMS_DENIED = (400, "AccessDeniedException")


def key_state(kms, key):
    """A reader of one KMS key as its owner (`kms`) sees it: metadata
    (state, usage, deletion date), policy, rotation, tags and the aliases
    that name it. The server has no grants (no ListGrants) to read."""

    def read():
        meta = kms.describe_key(KeyId=key)["KeyMetadata"]
        return {
            "metadata": meta,
            "policy": kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"],
            "rotation": kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"],
            "tags": kms.list_resource_tags(KeyId=key)["Tags"],
            "aliases": aliases(kms, meta["KeyId"])(),
        }

    return read


def aliases(kms, kid=None):
    """A reader of the account's aliases and the key each names (of key `kid` only, when given)."""

    def read():
        return sorted((a["AliasName"], a.get("TargetKeyId")) for a in kms.list_aliases()["Aliases"]
                      if kid is None or a.get("TargetKeyId") == kid)

    return read


def keys(kms):
    """A reader of the account's keys."""
    return lambda: sorted(k["KeyArn"] for k in kms.list_keys()["Keys"])


def test_iam_policy_arn(server):
    deny = {"Effect": "Deny", "Action": "iam:AttachUserPolicy", "Resource": "*",
            "Condition": {"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/IAMFullAccess"}}}
    name, creds = user(server, doc({"Effect": "Allow", "Action": "iam:*", "Resource": "*"}, deny))
    iam = iam_client(server, creds)
    denied(lambda: iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess"),
           watch=iam_state(iam_client(server, MAIN), name))
    assert iam_client(server, MAIN).list_attached_user_policies(UserName=name)["AttachedPolicies"] == []
    iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    iam.detach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")


ALLOW_KMS = {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}


def kms_deny(action, op, key, value):
    return doc(ALLOW_KMS, {"Effect": "Deny", "Action": action, "Resource": "*", "Condition": {op: {key: value}}})


def test_kms_bypass_policy_lockout_safety_check_on_put_key_policy(server):
    _, creds = user(server, kms_deny("kms:PutKeyPolicy", "Bool", "kms:BypassPolicyLockoutSafetyCheck", "true"))
    root = svc(server, "kms", MAIN)
    key = root.create_key()["KeyMetadata"]["KeyId"]
    before = root.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    kms = svc(server, "kms", creds)
    lockout = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:root"},
                   "Action": "kms:Decrypt", "Resource": "*"})
    denied(lambda: kms.put_key_policy(KeyId=key, PolicyName="default", Policy=lockout,
                                      BypassPolicyLockoutSafetyCheck=True),
           want=KMS_DENIED, watch=key_state(root, key))
    assert root.get_key_policy(KeyId=key, PolicyName="default")["Policy"] == before
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=before)


def test_kms_bypass_policy_lockout_safety_check_on_create_key(server):
    _, creds = user(server, kms_deny("kms:CreateKey", "Bool", "kms:BypassPolicyLockoutSafetyCheck", "true"))
    kms = svc(server, "kms", creds)
    before = len(svc(server, "kms", MAIN).list_keys()["Keys"])
    policy = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:root"},
                  "Action": "kms:*", "Resource": "*"})
    denied(lambda: kms.create_key(Policy=policy, BypassPolicyLockoutSafetyCheck=True),
           want=KMS_DENIED, watch=keys(svc(server, "kms", MAIN)))
    assert len(svc(server, "kms", MAIN).list_keys()["Keys"]) == before
    kms.create_key(Policy=policy)


@pytest.fixture(scope="module")
def key(server):
    return svc(server, "kms", MAIN).create_key()["KeyMetadata"]["Arn"]


def test_kms_encryption_context_pair(server, key):
    _, creds = user(server, kms_deny("kms:Encrypt", "StringEquals", "kms:EncryptionContext:purpose", "secret"))
    kms = svc(server, "kms", creds)
    denied(lambda: kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"purpose": "secret"}),
           want=KMS_DENIED, watch=key_state(svc(server, "kms", MAIN), key))
    kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"purpose": "other"})


def test_kms_encryption_context_keys(server, key):
    _, creds = user(server, kms_deny("kms:Encrypt", "ForAnyValue:StringEquals", "kms:EncryptionContextKeys",
                                     "tenant"))
    kms = svc(server, "kms", creds)
    denied(lambda: kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"tenant": "a"}),
           want=KMS_DENIED, watch=key_state(svc(server, "kms", MAIN), key))
    kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"team": "a"})


def test_kms_caller_account(server, key):
    _, creds = user(server, kms_deny("kms:Encrypt", "StringEquals", "kms:CallerAccount", MAIN_ID))
    kms = svc(server, "kms", creds)
    denied(lambda: kms.encrypt(KeyId=key, Plaintext=b"x"), want=KMS_DENIED,
           watch=key_state(svc(server, "kms", MAIN), key))
    kms.describe_key(KeyId=key)


def test_kms_via_service(server, key):
    b = f"ck-via-{uuid.uuid4().hex[:8]}"
    server.client(MAIN).create_bucket(Bucket=b)
    _, creds = user(server, json.dumps({"Version": "2012-10-17", "Statement": [
        ALLOW_KMS, {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]},
        {"Effect": "Deny", "Action": "kms:GenerateDataKey", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}}]}))
    s3 = s3_client(server, creds)
    denied(lambda: s3.put_object(Bucket=b, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key),
           watch=[bucket_state(server.client(MAIN), b, "k"), key_state(svc(server, "kms", MAIN), key)])
    assert server.client(MAIN).list_objects_v2(Bucket=b)["KeyCount"] == 0
    # the same action called directly is not through S3
    svc(server, "kms", creds).generate_data_key(KeyId=key, KeySpec="AES_256")


def test_documented_keys_each_have_a_test():
    keys = {"iam:PolicyARN", "kms:CallerAccount", "kms:ViaService", "kms:EncryptionContext:<key>",
            "kms:EncryptionContextKeys", "kms:BypassPolicyLockoutSafetyCheck"}
    tested = {"iam:PolicyARN": test_iam_policy_arn, "kms:CallerAccount": test_kms_caller_account,
              "kms:ViaService": test_kms_via_service, "kms:EncryptionContext:<key>": test_kms_encryption_context_pair,
              "kms:EncryptionContextKeys": test_kms_encryption_context_keys,
              "kms:BypassPolicyLockoutSafetyCheck": test_kms_bypass_policy_lockout_safety_check_on_put_key_policy}
    assert set(tested) == keys


def test_an_identity_deny_wins_over_a_key_policy_naming_the_caller(server):
    name, creds = user(server, doc(ALLOW_KMS, {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}))
    root = svc(server, "kms", MAIN)
    k = root.create_key(Policy=doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:user/{name}"}, "Action": "kms:*",
         "Resource": "*"}))["KeyMetadata"]["KeyId"]
    kms = svc(server, "kms", creds)
    blob = kms.encrypt(KeyId=k, Plaintext=b"secret")["CiphertextBlob"]
    denied(lambda: kms.decrypt(CiphertextBlob=blob), want=KMS_DENIED, watch=key_state(root, k))
    assert root.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"


def test_update_alias_needs_the_key_it_names_now(server):
    root = svc(server, "kms", MAIN)
    a, b, c = (root.create_key()["KeyMetadata"]["Arn"] for _ in range(3))
    u = uuid.uuid4().hex[:8]
    theirs, mine = f"alias/theirs-{u}", f"alias/mine-{u}"
    root.create_alias(AliasName=theirs, TargetKeyId=b)
    root.create_alias(AliasName=mine, TargetKeyId=a)
    _, creds = user(server, doc({"Effect": "Allow", "Action": "kms:*",
                                 "Resource": [a, c, f"arn:aws:kms:us-east-1:{MAIN_ID}:alias/*"]}))
    kms = svc(server, "kms", creds)
    # hijack: point another's alias (on key b, not the caller's) at the caller's key
    denied(lambda: kms.update_alias(AliasName=theirs, TargetKeyId=a), want=KMS_DENIED,
           watch=[aliases(root), key_state(root, a), key_state(root, b)])
    target = {x["AliasName"]: x["TargetKeyId"] for x in root.list_aliases()["Aliases"]}
    assert target[theirs] == b.rsplit("/", 1)[1]
    kms.update_alias(AliasName=mine, TargetKeyId=c)
    target = {x["AliasName"]: x["TargetKeyId"] for x in root.list_aliases()["Aliases"]}
    assert target[mine] == c.rsplit("/", 1)[1]


def test_an_alias_is_an_identity_resource(server):
    root = svc(server, "kms", MAIN)
    a = root.create_key()["KeyMetadata"]["Arn"]
    _, creds = user(server, doc({"Effect": "Allow", "Action": "kms:*", "Resource": a}))
    name = f"alias/noperm-{uuid.uuid4().hex[:8]}"
    denied(lambda: svc(server, "kms", creds).create_alias(AliasName=name, TargetKeyId=a), want=KMS_DENIED,
           watch=[aliases(root), key_state(root, a)])
    assert name not in {x["AliasName"] for x in root.list_aliases()["Aliases"]}



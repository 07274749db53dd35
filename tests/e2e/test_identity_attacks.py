"""The control plane judged by identity, not by name: attacks on IAM and STS
that an earlier build let through, each with AWS's answer, a control that
the legitimate path works, and a check that a refused request changed
nothing.

- IAM decisions use the entity's real ARN, path included; AssumeRole
  resolves RoleArn to the stored role and refuses another path.
- The account root's access keys are the root's alone.
- Sessions, bucket-policy principals and trust-policy principals are bound
  to the entity's unique id: delete an entity and re-create its name, and
  the old session or grant does not reach the newcomer.
- STS limits: the root may not assume roles; chained role sessions last at
  most an hour."""
import json
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import MAIN, error_of
from denial import bucket_state, denied, iam_state
from test_access_matrix import iam_client, s3_client, sts_client

MAIN_ID = "210000000001"


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*"):
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action, resource):
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def uid():
    return uuid.uuid4().hex[:8]


def user_with(server, name, policy, path="/"):
    iam = iam_client(server, MAIN)
    iam.create_user(UserName=name, Path=path)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def remove_user(server, name):
    iam = iam_client(server, MAIN)
    for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"])
    for p in iam.list_user_policies(UserName=name)["PolicyNames"]:
        iam.delete_user_policy(UserName=name, PolicyName=p)
    iam.delete_user(UserName=name)


def group_state(iam, group):
    """A reader of one group as the account root (`iam`) sees it: path,
    members, inline policies (with documents) and attached policies."""

    def read():
        g = iam.get_group(GroupName=group)
        names = iam.list_group_policies(GroupName=group)["PolicyNames"]
        return (g["Group"]["Path"], sorted(u["UserName"] for u in g["Users"]),
                {n: iam.get_group_policy(GroupName=group, PolicyName=n)["PolicyDocument"] for n in names},
                sorted(p["PolicyArn"] for p in iam.list_attached_group_policies(GroupName=group)["AttachedPolicies"]))

    return read


def root_keys(iam):
    """A reader of the account root's own access keys and their status."""
    return lambda: sorted((k["AccessKeyId"], k["Status"]) for k in iam.list_access_keys()["AccessKeyMetadata"])


def mfa_state(iam, user):
    """A reader of `user`'s IAM state and its enabled MFA devices."""
    base = iam_state(iam, user)
    return lambda: (base(), sorted(d["SerialNumber"] for d in iam.list_mfa_devices(UserName=user)["MFADevices"]))


# ---------------------------------------------------------------- paths

@pytest.fixture(scope="module")
def mallory(server):
    """A user under /protected/ allowed iam:* but denied everything on
    /protected/ users, /admin/ groups and /admin/ roles; targets on both
    sides of each deny."""
    u = uid()
    iam = iam_client(server, MAIN)
    w = {"me": f"mallory-{u}", "plain_user": f"plain-{u}", "admin_group": f"admins-{u}",
         "plain_group": f"plaing-{u}", "admin_role": f"adminrole-{u}", "plain_role": f"plainrole-{u}"}
    trust = doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:root"}})
    iam.create_group(GroupName=w["admin_group"], Path="/admin/")
    iam.create_group(GroupName=w["plain_group"])
    iam.create_role(RoleName=w["admin_role"], Path="/admin/", AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName=w["plain_role"], AssumeRolePolicyDocument=trust)
    iam.create_user(UserName=w["plain_user"])
    w["creds"] = user_with(server, w["me"], doc(
        allow("iam:*"),
        deny("iam:*", f"arn:aws:iam::{MAIN_ID}:user/protected/*"),
        deny("iam:*", f"arn:aws:iam::{MAIN_ID}:group/admin/*"),
        deny("iam:*", f"arn:aws:iam::{MAIN_ID}:role/admin/*")), path="/protected/")
    w["iam"] = iam_client(server, w["creds"])
    w["root"] = iam
    return w


def test_a_deny_on_a_user_path_holds_for_the_user_under_it(mallory):
    m, iam = mallory, mallory["iam"]
    watch = iam_state(m["root"], m["me"])
    denied(lambda: iam.put_user_policy(UserName=m["me"], PolicyName="all", PolicyDocument=doc(allow("*"))),
           watch=watch)
    denied(lambda: iam.attach_user_policy(UserName=m["me"], PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess"),
           watch=watch)
    assert m["root"].list_user_policies(UserName=m["me"])["PolicyNames"] == ["p"]
    assert m["root"].list_attached_user_policies(UserName=m["me"])["AttachedPolicies"] == []
    # control: the same actions on a user outside /protected/ are allowed
    iam.put_user_policy(UserName=m["plain_user"], PolicyName="x", PolicyDocument=doc(allow("s3:GetObject")))
    iam.delete_user_policy(UserName=m["plain_user"], PolicyName="x")


def test_a_deny_on_a_group_path_holds_for_groups_under_it(mallory):
    m, iam = mallory, mallory["iam"]
    watch = [group_state(m["root"], m["admin_group"]), iam_state(m["root"], m["me"])]
    denied(lambda: iam.add_user_to_group(GroupName=m["admin_group"], UserName=m["me"]), watch=watch)
    denied(lambda: iam.put_group_policy(GroupName=m["admin_group"], PolicyName="x", PolicyDocument=doc(allow("*"))),
           watch=watch)
    assert m["root"].get_group(GroupName=m["admin_group"])["Users"] == []
    iam.add_user_to_group(GroupName=m["plain_group"], UserName=m["plain_user"])
    iam.remove_user_from_group(GroupName=m["plain_group"], UserName=m["plain_user"])


def test_a_deny_on_a_role_path_holds_for_roles_under_it(mallory):
    m, iam = mallory, mallory["iam"]
    watch = iam_state(m["root"], roles=[m["admin_role"]])
    denied(lambda: iam.put_role_policy(RoleName=m["admin_role"], PolicyName="x", PolicyDocument=doc(allow("*"))),
           watch=watch)
    denied(lambda: iam.attach_role_policy(RoleName=m["admin_role"],
                                          PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess"), watch=watch)
    denied(lambda: iam.delete_role(RoleName=m["admin_role"]), watch=watch)
    assert m["root"].list_role_policies(RoleName=m["admin_role"])["PolicyNames"] == []
    assert m["root"].get_role(RoleName=m["admin_role"])["Role"]["Path"] == "/admin/"
    iam.put_role_policy(RoleName=m["plain_role"], PolicyName="x", PolicyDocument=doc(allow("s3:GetObject")))
    iam.delete_role_policy(RoleName=m["plain_role"], PolicyName="x")


def test_a_deny_on_a_path_holds_for_creation_under_it(mallory):
    m, iam = mallory, mallory["iam"]
    name = f"newprot-{uid()}"
    denied(lambda: iam.create_user(UserName=name, Path="/protected/"), watch=iam_state(m["root"], m["me"]))
    with pytest.raises(ClientError) as e:
        m["root"].get_user(UserName=name)
    assert error_of(e) == (404, "NoSuchEntity")


@pytest.mark.parametrize("claimed", ["role/dev/{r}", "role/x/y/{r}", "role/{r}"])
def test_assume_role_is_decided_on_the_stored_roles_arn(server, claimed):
    """Allowed only roles under /dev/, the caller names a role that lives
    elsewhere with a /dev/ path (or with none while it lives under /ops/):
    AWS refuses, the caller's policy does not reach it."""
    iam = iam_client(server, MAIN)
    u = uid()
    r = f"target-{u}"
    trust = doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:root"}})
    iam.create_role(RoleName=r, Path="/ops/", AssumeRolePolicyDocument=trust)
    creds = user_with(server, f"dev-{u}", doc(
        allow("sts:AssumeRole", f"arn:aws:iam::{MAIN_ID}:role/dev/*"),
        allow("sts:AssumeRole", f"arn:aws:iam::{MAIN_ID}:role/{r}")))
    sts = sts_client(server, creds)
    denied(lambda: sts.assume_role(RoleArn=f"arn:aws:iam::{MAIN_ID}:{claimed.format(r=r)}", RoleSessionName="ss"),
           watch=iam_state(iam, f"dev-{u}", roles=[r]))
    # control: a role that does live under /dev/
    d = f"devrole-{u}"
    arn = iam.create_role(RoleName=d, Path="/dev/", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    assert arn == f"arn:aws:iam::{MAIN_ID}:role/dev/{d}"
    assert sts.assume_role(RoleArn=arn, RoleSessionName="ss")["Credentials"]["AccessKeyId"].startswith("ASIA")


# ---------------------------------------------------------------- root keys

def test_root_access_keys_are_the_roots_alone(server):
    root = iam_client(server, MAIN)
    k = root.create_access_key()["AccessKey"]
    rootkey = k["AccessKeyId"]
    try:
        admin = iam_client(server, user_with(server, f"admin-{uid()}", doc(allow("*"))))
        watch = [root_keys(root), iam_state(root)]
        denied(lambda: admin.update_access_key(AccessKeyId=rootkey, Status="Inactive"), watch=watch)
        denied(lambda: admin.delete_access_key(AccessKeyId=rootkey), watch=watch)
        keys = {x["AccessKeyId"]: x["Status"] for x in root.list_access_keys()["AccessKeyMetadata"]}
        assert keys.get(rootkey) == "Active"
        # the root key still works
        s3_client(server, (rootkey, k["SecretAccessKey"])).list_buckets()
        # the root manages its own keys
        root.update_access_key(AccessKeyId=rootkey, Status="Inactive")
        root.update_access_key(AccessKeyId=rootkey, Status="Active")
    finally:
        root.delete_access_key(AccessKeyId=rootkey)


def test_an_iam_user_lists_its_own_keys(server):
    name = f"self-{uid()}"
    creds = user_with(server, name, doc(allow("iam:ListAccessKeys", f"arn:aws:iam::{MAIN_ID}:user/{name}")))
    keys = iam_client(server, creds).list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [x["AccessKeyId"] for x in keys] == [creds[0]]


# ---------------------------------------------------------------- unique ids

def test_a_session_dies_with_its_user_and_does_not_act_for_a_successor(server):
    name = f"sess-{uid()}"
    b = f"succ-{uid()}"
    server.client(MAIN).create_bucket(Bucket=b)
    creds = user_with(server, name, doc(allow("s3:ListBucket", f"arn:aws:s3:::{b}")))
    t = sts_client(server, creds).get_session_token()["Credentials"]
    sess = s3_client(server, (t["AccessKeyId"], t["SecretAccessKey"]), t["SessionToken"])
    sess.list_objects_v2(Bucket=b)
    remove_user(server, name)
    # the name again, with more rights
    user_with(server, name, doc(allow("s3:*")))
    watch = bucket_state(server.client(MAIN), b, "planted")
    denied(lambda: sess.list_objects_v2(Bucket=b), want=(403, "InvalidAccessKeyId"), watch=watch)
    denied(lambda: sess.put_object(Bucket=b, Key="planted", Body=b"x"), want=(403, "InvalidAccessKeyId"),
           watch=watch)
    assert server.client(MAIN).list_objects_v2(Bucket=b)["KeyCount"] == 0


def test_a_role_session_dies_with_its_role_and_does_not_act_for_a_successor(server):
    iam = iam_client(server, MAIN)
    u = uid()
    r, b = f"gone-{u}", f"succr-{u}"
    server.client(MAIN).create_bucket(Bucket=b)
    trust = doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:root"}})
    arn = iam.create_role(RoleName=r, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName=r, PolicyName="p", PolicyDocument=doc(allow("s3:ListBucket", f"arn:aws:s3:::{b}")))
    assumer = user_with(server, f"assumer-{u}", doc(allow("sts:AssumeRole", arn)))
    c = sts_client(server, assumer).assume_role(RoleArn=arn, RoleSessionName="ss")["Credentials"]
    sess = s3_client(server, (c["AccessKeyId"], c["SecretAccessKey"]), c["SessionToken"])
    sess.list_objects_v2(Bucket=b)
    iam.delete_role_policy(RoleName=r, PolicyName="p")
    iam.delete_role(RoleName=r)
    iam.create_role(RoleName=r, AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName=r, PolicyName="p", PolicyDocument=doc(allow("s3:*")))
    denied(lambda: sess.put_object(Bucket=b, Key="planted", Body=b"x"), want=(403, "InvalidAccessKeyId"),
           watch=bucket_state(server.client(MAIN), b, "planted"))
    assert server.client(MAIN).list_objects_v2(Bucket=b)["KeyCount"] == 0


def test_a_bucket_policy_grant_does_not_pass_to_a_successor_of_the_name(server):
    owner = server.client(MAIN)
    u = uid()
    b, name = f"bpid-{u}", f"grantee-{u}"
    owner.create_bucket(Bucket=b)
    owner.put_object(Bucket=b, Key="secret", Body=b"for the first grantee")
    creds = user_with(server, name, doc(allow("s3:ListAllMyBuckets")))
    user_arn = f"arn:aws:iam::{MAIN_ID}:user/{name}"
    policy = doc({"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "s3:GetObject",
                  "Resource": f"arn:aws:s3:::{b}/*"})
    owner.put_bucket_policy(Bucket=b, Policy=policy)
    assert s3_client(server, creds).get_object(Bucket=b, Key="secret")["Body"].read() == b"for the first grantee"
    first_id = iam_client(server, MAIN).get_user(UserName=name)["User"]["UserId"]
    remove_user(server, name)
    # AWS shows the unique id of a principal that is gone
    shown = json.loads(owner.get_bucket_policy(Bucket=b)["Policy"])
    assert shown["Statement"][0]["Principal"]["AWS"] == first_id
    successor = user_with(server, name, doc(allow("s3:ListAllMyBuckets")))
    denied(lambda: s3_client(server, successor).get_object(Bucket=b, Key="secret"),
           watch=bucket_state(owner, b, "secret"))
    assert json.loads(owner.get_bucket_policy(Bucket=b)["Policy"])["Statement"][0]["Principal"]["AWS"] == first_id


def test_a_bucket_policy_naming_no_existing_entity_is_refused(server):
    owner = server.client(MAIN)
    b = f"bpnone-{uid()}"
    owner.create_bucket(Bucket=b)
    policy = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:user/nobody-{uid()}"},
                  "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"})
    denied(lambda: owner.put_bucket_policy(Bucket=b, Policy=policy), want=(400, "MalformedPolicy"),
           watch=bucket_state(owner, b))
    with pytest.raises(ClientError) as e:
        owner.get_bucket_policy(Bucket=b)
    assert error_of(e) == (404, "NoSuchBucketPolicy")


def test_a_trust_policy_does_not_trust_a_successor_of_the_name(server):
    iam = iam_client(server, MAIN)
    u = uid()
    name, r = f"trusted-{u}", f"trusting-{u}"
    policy = doc(allow("sts:AssumeRole"))
    creds = user_with(server, name, policy)
    trust = doc({"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:user/{name}"}})
    arn = iam.create_role(RoleName=r, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    sts_client(server, creds).assume_role(RoleArn=arn, RoleSessionName="ss")
    remove_user(server, name)
    successor = user_with(server, name, policy)
    denied(lambda: sts_client(server, successor).assume_role(RoleArn=arn, RoleSessionName="ss"),
           watch=iam_state(iam, name, roles=[r]))


# ---------------------------------------------------------------- STS limits

def test_the_account_root_cannot_assume_a_role(server):
    iam = iam_client(server, MAIN)
    r = f"noroot-{uid()}"
    trust = doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:root"}})
    arn = iam.create_role(RoleName=r, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    denied(lambda: sts_client(server, MAIN).assume_role(RoleArn=arn, RoleSessionName="ss"),
           watch=iam_state(iam, roles=[r]))


def test_chained_role_sessions_last_at_most_an_hour(server):
    iam = iam_client(server, MAIN)
    u = uid()
    r1, r2 = f"first-{u}", f"second-{u}"
    trust = doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:root"}})
    a1 = iam.create_role(RoleName=r1, AssumeRolePolicyDocument=trust, MaxSessionDuration=43200)["Role"]["Arn"]
    a2 = iam.create_role(RoleName=r2, AssumeRolePolicyDocument=trust, MaxSessionDuration=43200)["Role"]["Arn"]
    iam.put_role_policy(RoleName=r1, PolicyName="p", PolicyDocument=doc(allow("sts:AssumeRole", a2)))
    creds = user_with(server, f"chain-{u}", doc(allow("sts:AssumeRole", a1)))
    c = sts_client(server, creds).assume_role(RoleArn=a1, RoleSessionName="ss", DurationSeconds=43200)["Credentials"]
    chained = sts_client(server, (c["AccessKeyId"], c["SecretAccessKey"]), c["SessionToken"])
    denied(lambda: chained.assume_role(RoleArn=a2, RoleSessionName="s2", DurationSeconds=7200),
           want=(400, "ValidationError"), watch=iam_state(iam, roles=[r1, r2]))
    got = chained.assume_role(RoleArn=a2, RoleSessionName="s2")["Credentials"]
    import datetime
    left = got["Expiration"] - datetime.datetime.now(datetime.timezone.utc)
    assert left.total_seconds() <= 3600 + 5


# ---------------------------------------------------------------- MFA devices

def seed_of(dev):
    s = dev["Base32StringSeed"]
    return s.decode() if isinstance(s, bytes) else s


def test_a_refused_device_creation_leaves_the_existing_device_alone(server):
    from test_identity_cli import totp
    import time
    iam = iam_client(server, MAIN)
    name = f"mfa-keep-{uid()}"
    iam.create_user(UserName=name)
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    denied(lambda: iam.create_virtual_mfa_device(VirtualMFADeviceName=name), want=(409, "EntityAlreadyExists"),
           watch=mfa_state(iam, name))
    # the first seed still works: the refused creation wrote no new one
    now = time.time()
    iam.enable_mfa_device(UserName=name, SerialNumber=dev["SerialNumber"],
                          AuthenticationCode1=totp(seed_of(dev), now - 30),
                          AuthenticationCode2=totp(seed_of(dev), now))


def test_delete_virtual_mfa_device(server):
    from test_identity_cli import totp
    import time
    iam = iam_client(server, MAIN)
    name = f"mfa-del-{uid()}"
    iam.create_user(UserName=name)
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    now = time.time()
    iam.enable_mfa_device(UserName=name, SerialNumber=dev["SerialNumber"],
                          AuthenticationCode1=totp(seed_of(dev), now - 30),
                          AuthenticationCode2=totp(seed_of(dev), now))
    denied(lambda: iam.delete_virtual_mfa_device(SerialNumber=dev["SerialNumber"]), want=(409, "DeleteConflict"),
           watch=mfa_state(iam, name))
    iam.deactivate_mfa_device(UserName=name, SerialNumber=dev["SerialNumber"])
    iam.delete_virtual_mfa_device(SerialNumber=dev["SerialNumber"])
    denied(lambda: iam.delete_virtual_mfa_device(SerialNumber=dev["SerialNumber"]), want=(404, "NoSuchEntity"),
           watch=mfa_state(iam, name))
    # the name is free again, with a new seed
    again = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    assert again["SerialNumber"] == dev["SerialNumber"] and seed_of(again) != seed_of(dev)


def test_codes_used_to_enable_a_device_are_used_up(server):
    from test_identity_cli import totp
    import time
    iam = iam_client(server, MAIN)
    name = f"mfa-once-{uid()}"
    iam.create_user(UserName=name)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    sts = sts_client(server, (k["AccessKeyId"], k["SecretAccessKey"]))
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    serial, seed = dev["SerialNumber"], seed_of(dev)
    if time.time() % 30 > 25:
        time.sleep(6)  # keep the three steps below inside the drift window
    now = time.time()
    iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1=totp(seed, now - 30),
                          AuthenticationCode2=totp(seed, now))
    for used in (totp(seed, now - 30), totp(seed, now)):
        denied(lambda: sts.get_session_token(SerialNumber=serial, TokenCode=used), watch=mfa_state(iam, name))
    # control: the next step's code (within one step of drift) is fresh
    assert sts.get_session_token(SerialNumber=serial, TokenCode=totp(seed, now + 30))["Credentials"]

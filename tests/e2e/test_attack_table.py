"""The attack table: one row per request an attacker sends, the principal
that sends it, AWS's answer (HTTP status and error code) and, for every
denial, proof that nothing changed (object bytes, versions, tags,
metadata, policies, uploads, IAM/KMS state; no object at the destination).
Rows where the caller does hold the right send the same request form and
must succeed, so the denials are not "everything is broken".

Every refusing row goes through `denied()` (denial.py, issue 16): the row
names what it addresses (`on`: the bucket and keys, or the IAM / KMS state),
the runner snapshots that (bucket_state: versions, uploads, the named keys'
bytes/metadata/tags, every bucket configuration) together with the row's own
finer `watch` specs, sends the request, checks the answer and checks that
nothing changed. A refusing row without `on` is a definition error.

The world (buckets, users, roles, sessions, keys) is built once per module;
rows that would change shared state work on objects of their own (setup),
so a bypass in one row cannot spoil the next.

Categories:
  c1  encoded / duplicated query-parameter names an authorization decision reads
  c2  x-amz-copy-source forms (CopyObject, UploadPartCopy)
  c3  pre-signed URL and Authorization tampering (SigV4, SigV2)
  c4  POST Object (browser form uploads)
  c5  aws-chunked integrity
  c6  cross-account and anonymous callers
  c7  prefix-scoped policies with encoded and unicode keys
  c8  session policies
  c9  IAM / STS / KMS actions without permission
  c10 Block Public Access defaults
  c11 bucket re-creation between requests
  (damaged stored records need a stopped server: test_damaged_records.py)

`# AWS code uncertain` marks rows whose exact AWS error code is not pinned
by documentation; they carry AWS's most likely answer."""
import base64
import datetime
import hashlib
import json
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import quote

import boto3
import pytest
import requests
from botocore import UNSIGNED as BOTO_UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

import sigv4
from attack_lib import (Resp, ago, chunk_frames, delete_xml, md5_b64, presign_v2, presign_v4, send, signed,
                        sigv2_header, tagging_xml)
from conftest import ALT, MAIN, Server
from denial import bucket_state, denied, iam_state
from sigv4 import amz_now

MAIN_ID, ALT_ID = "210000000001", "210000000002"
NS = "http://s3.amazonaws.com/doc/2006-03-01/"


# ---------------------------------------------------------------- policies

def stmt(effect, actions, resources, cond=None, principal=None):
    s = {"Effect": effect, "Action": actions, "Resource": resources}
    if cond:
        s["Condition"] = cond
    if principal is not None:
        s["Principal"] = principal
    return s


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def arn(bucket, key=None):
    return f"arn:aws:s3:::{bucket}" + ("" if key is None else f"/{key}")


# ---------------------------------------------------------------- the world

def cfg(**kw):
    return Config(retries={"max_attempts": 1}, **kw)


class World:
    def __init__(self, server, nosig2):
        self.server = server
        self.nosig2 = nosig2
        self.names = {}
        u = uuid.uuid4().hex[:8]
        self.u = u
        self.creds = {"main": MAIN, "alt": ALT}
        self.c = {}
        self.s3 = self.client("main")
        self.alt_s3 = self.client("alt")
        self.c["anon"] = boto3.client("s3", endpoint_url=server.http, region_name="us-east-1",
                                      config=cfg(signature_version=BOTO_UNSIGNED))
        self.iam = self.svc("iam", MAIN)
        self.alt_iam = self.svc("iam", ALT)
        self.kms = self.svc("kms", MAIN)
        self.alt_kms = self.svc("kms", ALT)
        self.owner = {}  # bucket -> owning account's s3 client

        # ---- buckets of the main account
        self.VB = self.bucket(f"atk-ver-{u}", versioned=True)
        self.LB = self.bucket(f"atk-list-{u}")
        self.MB = self.bucket(f"atk-mpu-{u}")
        self.SB = self.bucket(f"atk-sub-{u}")
        self.LK = self.bucket(f"atk-lock-{u}", lock=True)
        self.VICTIM = self.bucket(f"atk-victim-{u}", versioned=True)
        self.SHARED = self.bucket(f"atk-shared-{u}", versioned=True)
        self.HOME = self.bucket(f"atk-home-{u}")
        self.POSTB = self.bucket(f"atk-post-{u}")
        self.CB = self.bucket(f"atk-chunk-{u}")
        self.XB = self.bucket(f"atk-cross-{u}", versioned=True)
        self.SESS = self.bucket(f"atk-sess-{u}")
        self.PB = self.bucket(f"atk-presign-{u}")
        self.ALTB = self.bucket(f"atk-altdst-{u}", client=self.alt_s3)
        self.NOBUCKET = f"atk-nosuch-{u}"

        s3 = self.s3
        # versioned object with two versions, each tagged, the old with metadata
        self.v1 = s3.put_object(Bucket=self.VB, Key="doc", Body=b"doc-v1-old", Tagging="class=old",
                                Metadata={"m": "1"})["VersionId"]
        self.v2 = s3.put_object(Bucket=self.VB, Key="doc", Body=b"doc-v2-current", Tagging="class=cur")["VersionId"]
        for k in ("public/a", "public/b", "secret/x", "secret/y", "top"):
            s3.put_object(Bucket=self.LB, Key=k, Body=k.encode())
        s3.put_object(Bucket=self.MB, Key="plain", Body=b"plain")
        self.U = s3.create_multipart_upload(Bucket=self.MB, Key="mp")["UploadId"]
        s3.upload_part(Bucket=self.MB, Key="mp", UploadId=self.U, PartNumber=1, Body=b"p" * 10)
        s3.put_object(Bucket=self.SB, Key="obj", Body=b"sub-obj", Tagging="t=1")
        s3.put_bucket_tagging(Bucket=self.SB, Tagging={"TagSet": [{"Key": "team", "Value": "blue"}]})
        s3.put_bucket_policy(Bucket=self.SB, Policy=json.dumps(doc(stmt(
            "Deny", "s3:DeleteBucket", arn(self.SB), principal={"AWS": f"arn:aws:iam::{ALT_ID}:root"}))))
        until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)
        s3.put_object(Bucket=self.LK, Key="locked", Body=b"locked", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=until, ObjectLockLegalHoldStatus="OFF")
        self.copy_src = {}
        for b, tag in ((self.VICTIM, "victim"), (self.SHARED, "shared")):
            old = s3.put_object(Bucket=b, Key="secret", Body=f"{tag}-old".encode())["VersionId"]
            s3.put_object(Bucket=b, Key="secret", Body=f"{tag}-secret".encode())
            for k in ("se?cret", "a+b", "a b", "€"):
                s3.put_object(Bucket=b, Key=k, Body=f"{tag}-{k}".encode())
            self.copy_src[b] = old
        s3.put_bucket_policy(Bucket=self.SHARED, Policy=json.dumps(doc(stmt(
            "Allow", ["s3:GetObject", "s3:GetObjectVersion"], arn(self.SHARED, "*"),
            principal={"AWS": f"arn:aws:iam::{ALT_ID}:root"}))))
        for k, v in (("home/bob/x", b"bob"), ("home/alice/x", b"alice"), ("home/alice/ü.txt", b"umlaut")):
            s3.put_object(Bucket=self.HOME, Key=k, Body=v)
        s3.put_object(Bucket=self.CB, Key="existing", Body=b"existing-bytes")
        s3.put_object(Bucket=self.XB, Key="x", Body=b"cross-x", Tagging="a=b")
        for k in ("pub/x", "priv/x"):
            s3.put_object(Bucket=self.SESS, Key=k, Body=k.encode())
        s3.put_object(Bucket=self.PB, Key="existing", Body=b"presign-existing")

        # ---- users of the main account
        VB, LB, MB, SB, LK = self.VB, self.LB, self.MB, self.SB, self.LK
        plain = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging",
                 "s3:DeleteObjectTagging", "s3:GetObjectAcl", "s3:ListBucket"]
        versioned = ["s3:GetObjectVersion", "s3:DeleteObjectVersion", "s3:GetObjectVersionTagging",
                     "s3:PutObjectVersionTagging", "s3:DeleteObjectVersionTagging", "s3:GetObjectVersionAcl"]
        self.user("nover", doc(stmt("Allow", plain, [arn(VB), arn(VB, "*")]),
                               stmt("Deny", versioned, [arn(VB, "*")])))
        self.user("ver", doc(stmt("Allow", plain + versioned, [arn(VB), arn(VB, "*")])))
        self.user("lister", doc(
            stmt("Allow", "s3:ListBucket", arn(LB)),
            stmt("Deny", "s3:ListBucket", arn(LB), {"StringLike": {"s3:prefix": "secret*"}}),
            stmt("Deny", "s3:ListBucket", arn(LB), {"NumericGreaterThan": {"s3:max-keys": "100"}}),
            stmt("Deny", "s3:ListBucket", arn(LB), {"StringEquals": {"s3:delimiter": "x"}})))
        self.user("listpub", doc(stmt("Allow", "s3:ListBucket", arn(LB), {"StringLike": {"s3:prefix": "public/*"}})))
        self.user("mpget", doc(stmt("Allow", ["s3:GetObject", "s3:DeleteObject"], arn(MB, "*")),
                               stmt("Allow", "s3:ListBucket", arn(MB))))
        self.user("mpall", doc(stmt("Allow", ["s3:PutObject", "s3:AbortMultipartUpload",
                                              "s3:ListMultipartUploadParts"], arn(MB, "*")),
                               stmt("Allow", "s3:ListBucketMultipartUploads", arn(MB))))
        self.user("getput", doc(stmt("Allow", ["s3:GetObject", "s3:PutObject"], [arn(SB, "*"), arn(LK, "*")]),
                                stmt("Allow", "s3:ListBucket", [arn(SB), arn(LK)])))
        self.user("subok", doc(
            stmt("Allow", ["s3:GetObjectTagging", "s3:PutObjectTagging", "s3:GetObjectRetention",
                           "s3:GetObjectLegalHold"], [arn(SB, "*"), arn(LK, "*")]),
            stmt("Allow", ["s3:GetBucketPolicy", "s3:GetBucketVersioning", "s3:ListBucketMultipartUploads",
                           "s3:GetBucketTagging"], [arn(SB), arn(LK)])))
        self.user("alice", doc(stmt("Allow", ["s3:GetObject", "s3:PutObject"], arn(self.HOME, "home/alice/*"))))
        self.user("poster", doc(stmt("Allow", "s3:PutObject", arn(self.POSTB, "*")),
                                stmt("Deny", "s3:PutObject", arn(self.POSTB, "protected/*"))))
        self.user("posterb", doc(stmt("Allow", "s3:PutObject", arn(self.POSTB))))
        self.user("delmix", doc(stmt("Allow", "s3:DeleteObject", arn(self.XB, "mine/*"))))
        self.user("s3only", doc(stmt("Allow", "s3:*", "*")))
        self.user("assumer", doc(stmt("Allow", "sts:AssumeRole", "*")))
        self.user("tempkey", doc(stmt("Allow", ["s3:GetObject", "s3:PutObject"], arn(self.PB, "*"))))
        self.user("doomed", doc(stmt("Allow", ["s3:GetObject", "s3:PutObject"], arn(self.PB, "*"))))
        # ---- a user of the other account with full S3 rights of its own
        self.user("altuser", doc(stmt("Allow", "s3:*", "*")), iam=self.alt_iam)

        # ---- a role and its sessions
        self.role = f"atk-sess-{u}"
        trust = doc({"Effect": "Allow", "Action": "sts:AssumeRole",
                     "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:user/{self.names['assumer']}"}})
        self.iam.create_role(RoleName=self.role, AssumeRolePolicyDocument=json.dumps(trust))
        self.iam.put_role_policy(RoleName=self.role, PolicyName="p", PolicyDocument=json.dumps(
            doc(stmt("Allow", ["s3:GetObject", "s3:PutObject"], arn(self.SESS, "*")))))
        self.sess_get_arn = self.iam.create_policy(PolicyName=f"atk-sessget-{u}", PolicyDocument=json.dumps(
            doc(stmt("Allow", "s3:GetObject", arn(self.SESS, "*")))))["Policy"]["Arn"]
        self.admin_arn = self.iam.create_policy(PolicyName=f"atk-admin-{u}", PolicyDocument=json.dumps(
            doc(stmt("Allow", "*", "*"))))["Policy"]["Arn"]
        sts = self.svc("sts", self.creds["assumer"])
        role_arn = f"arn:aws:iam::{MAIN_ID}:role/{self.role}"

        def session(name, **kw):
            c = sts.assume_role(RoleArn=role_arn, RoleSessionName=name, **kw)["Credentials"]
            self.creds[name] = (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
            self.c[name] = self.client(name)

        session("sess_full")
        session("sess_inline", Policy=json.dumps(doc(stmt("Allow", "s3:GetObject", arn(self.SESS, "pub/*")))))
        session("sess_arns", PolicyArns=[{"arn": self.sess_get_arn}])
        session("sess_wide", Policy=json.dumps(doc(stmt("Allow", "s3:*", "*"))))
        session("sess_deny", Policy=json.dumps(doc(stmt("Allow", "s3:*", arn(self.SESS, "*")),
                                                   stmt("Deny", "s3:GetObject", arn(self.SESS, "priv/*")))))
        session("sess_other", Policy=json.dumps(doc(stmt("Allow", "s3:GetObject", arn(self.VB, "*")))))
        # GetFederationToken (with a session policy), if the server has it
        self.fed_skip = None
        try:
            c = self.svc("sts", self.creds["s3only"]).get_federation_token(
                Name="atkfed", Policy=json.dumps(doc(stmt("Allow", "s3:GetObject", arn(self.SESS, "pub/*")))))
            c = c["Credentials"]
            self.creds["fed"] = (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
            self.c["fed"] = self.client("fed")
        except ClientError as e:
            self.fed_skip = f"GetFederationToken is not served: {e.response['Error'].get('Code')}"

        # ---- KMS keys of both accounts
        self.mkey = self.kms.create_key()["KeyMetadata"]["Arn"]
        self.akey = self.alt_kms.create_key()["KeyMetadata"]["Arn"]
        self.mct = self.kms.encrypt(KeyId=self.mkey, Plaintext=b"main-secret")["CiphertextBlob"]
        self.act = self.alt_kms.encrypt(KeyId=self.akey, Plaintext=b"alt-secret")["CiphertextBlob"]

        # ---- pre-signed URLs of keys that are then deactivated / deleted
        self.tk_get = presign_v4(server, "GET", f"/{self.PB}/existing", self.creds["tempkey"])
        self.tk_put = presign_v4(server, "PUT", f"/{self.PB}/tempkey-put", self.creds["tempkey"])
        self.iam.update_access_key(UserName=self.names["tempkey"], AccessKeyId=self.creds["tempkey"][0],
                                   Status="Inactive")
        self.doomed_get = presign_v4(server, "GET", f"/{self.PB}/existing", self.creds["doomed"])
        dn = self.names["doomed"]
        self.iam.delete_access_key(UserName=dn, AccessKeyId=self.creds["doomed"][0])
        self.iam.delete_user_policy(UserName=dn, PolicyName="p")
        self.iam.delete_user(UserName=dn)

        # ---- the --no-sigv2 server's bucket
        n = nosig2.client()
        self.NB = f"atk-nosig2-{u}"
        n.create_bucket(Bucket=self.NB)
        n.put_object(Bucket=self.NB, Key="k", Body=b"v4-only")
        self.owner[self.NB] = n

    # -- construction helpers
    def svc(self, name, creds):
        return boto3.client(name, endpoint_url=self.server.http, aws_access_key_id=creds[0],
                            aws_secret_access_key=creds[1], aws_session_token=creds[2] if len(creds) > 2 else None,
                            region_name="us-east-1", config=cfg())

    def client(self, who, server=None, **kw):
        creds = self.creds[who]
        kw.setdefault("signature_version", "s3v4")
        c = boto3.client("s3", endpoint_url=(server or self.server).http, region_name="us-east-1",
                         aws_access_key_id=creds[0], aws_secret_access_key=creds[1],
                         aws_session_token=creds[2] if len(creds) > 2 else None, config=cfg(**kw))
        self.c.setdefault(who, c)
        return c

    def bucket(self, name, versioned=False, lock=False, client=None):
        c = client or self.s3
        if lock:
            c.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        else:
            c.create_bucket(Bucket=name)
        if versioned:
            c.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        self.owner[name] = c
        return name

    def user(self, who, policy, iam=None):
        iam = iam or self.iam
        name = f"atk-{who}-{self.u}"
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
        k = iam.create_access_key(UserName=name)["AccessKey"]
        self.names[who] = name
        self.creds[who] = (k["AccessKeyId"], k["SecretAccessKey"])
        self.client(who)

    # -- state, as the owners see it
    def state(self, spec):
        kind, *a = spec
        try:
            return getattr(self, "st_" + kind)(*a)
        except ClientError as e:
            return ("error", e.response["Error"].get("Code"))

    def versions(self, bucket, key):
        c = self.owner[bucket]
        r = c.list_object_versions(Bucket=bucket, Prefix=key)
        vs = [(v["VersionId"], v["ETag"], v["Size"], v["IsLatest"]) for v in r.get("Versions", []) if v["Key"] == key]
        dms = [(d["VersionId"], d["IsLatest"]) for d in r.get("DeleteMarkers", []) if d["Key"] == key]
        return vs, dms

    def st_obj(self, bucket, key):
        c = self.owner[bucket]
        vs, dms = self.versions(bucket, key)
        out = {"versions": vs, "markers": dms}
        for vid, _, _, latest in vs:
            kw = {} if latest else {"VersionId": vid}
            out[f"tags@{vid}"] = sorted((t["Key"], t["Value"]) for t in
                                        c.get_object_tagging(Bucket=bucket, Key=key, **kw)["TagSet"])
            g = c.get_object(Bucket=bucket, Key=key, **kw)
            out[f"bytes@{vid}"] = hashlib.sha256(g["Body"].read()).hexdigest()
            out[f"meta@{vid}"] = (g.get("Metadata"), g.get("ContentType"), g.get("ServerSideEncryption"),
                                  g.get("WebsiteRedirectLocation"), g.get("StorageClass"))
        return out

    def st_absent(self, bucket, key):
        return self.versions(bucket, key)

    def st_policy(self, bucket):
        return self.owner[bucket].get_bucket_policy(Bucket=bucket)["Policy"]

    def st_versioning(self, bucket):
        return self.owner[bucket].get_bucket_versioning(Bucket=bucket).get("Status")

    def st_btags(self, bucket):
        return self.owner[bucket].get_bucket_tagging(Bucket=bucket)["TagSet"]

    def st_pab(self, bucket):
        return self.owner[bucket].get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]

    def st_encryption(self, bucket):
        return self.owner[bucket].get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]

    def st_lockcfg(self, bucket):
        return self.owner[bucket].get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]

    def st_uploads(self, bucket):
        c = self.owner[bucket]
        ups = c.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        out = []
        for up in ups:
            parts = c.list_parts(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"]).get("Parts", [])
            out.append((up["Key"], up["UploadId"], [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts]))
        return sorted(out)

    def st_parts(self, bucket, key, upload):
        ps = self.owner[bucket].list_parts(Bucket=bucket, Key=key, UploadId=upload).get("Parts", [])
        return [(p["PartNumber"], p["ETag"], p["Size"]) for p in ps]

    def st_retention(self, bucket, key):
        r = self.owner[bucket].get_object_retention(Bucket=bucket, Key=key)["Retention"]
        return r["Mode"], r["RetainUntilDate"]

    def st_legal(self, bucket, key):
        return self.owner[bucket].get_object_legal_hold(Bucket=bucket, Key=key)["LegalHold"]["Status"]

    def st_users(self, acct="main"):
        iam = self.iam if acct == "main" else self.alt_iam
        return sorted(u["UserName"] for u in iam.list_users()["Users"])

    def st_roles(self):
        return sorted(r["RoleName"] for r in self.iam.list_roles()["Roles"])

    def st_mpolicies(self):
        return sorted(p["PolicyName"] for p in self.iam.list_policies(Scope="Local")["Policies"])

    def st_mpolicy(self, name):
        """Whether the account has a managed policy `name`. The server serves no
        ListPolicies / GetPolicy; DetachUserPolicy of a policy from a user it is
        not attached to changes nothing and says which of the two is missing
        ("The Policy <arn> cannot be found" / "... attached to <user> ...")."""
        try:
            self.iam.detach_user_policy(UserName=self.names["listpub"],
                                        PolicyArn=f"arn:aws:iam::{MAIN_ID}:policy/{name}")
        except ClientError as e:
            return e.response["Error"].get("Code"), e.response["Error"].get("Message")
        raise AssertionError(f"{name} was attached to {self.names['listpub']}")

    def st_groups(self):
        return sorted(g["GroupName"] for g in self.iam.list_groups()["Groups"])

    def st_upol(self, who):
        n = self.names[who]
        names = self.iam.list_user_policies(UserName=n)["PolicyNames"]
        return {p: self.iam.get_user_policy(UserName=n, PolicyName=p)["PolicyDocument"] for p in names}

    def st_attached(self, who):
        return self.iam.list_attached_user_policies(UserName=self.names[who])["AttachedPolicies"]

    def st_keys(self, who):
        return sorted((k["AccessKeyId"], k["Status"]) for k in
                      self.iam.list_access_keys(UserName=self.names[who])["AccessKeyMetadata"])

    def st_trust(self):
        return self.iam.get_role(RoleName=self.role)["Role"]["AssumeRolePolicyDocument"]

    def st_rolepol(self):
        names = self.iam.list_role_policies(RoleName=self.role)["PolicyNames"]
        att = self.iam.list_attached_role_policies(RoleName=self.role)["AttachedPolicies"]
        return names, att

    def st_kmskeys(self, acct="main"):
        k = self.kms if acct == "main" else self.alt_kms
        return sorted(x["KeyArn"] for x in k.list_keys()["Keys"])

    def st_kpolicy(self, key):
        k = self.kms if key == self.mkey else self.alt_kms
        return k.get_key_policy(KeyId=key, PolicyName="default")["Policy"]

    def st_kstate(self, key):
        k = self.kms if key == self.mkey else self.alt_kms
        return k.describe_key(KeyId=key)["KeyMetadata"]["KeyState"]

    # -- readers for denied(): what a refused request must leave unchanged
    def bucket_reader(self, bucket, *keys):
        """bucket_state of `bucket` as its owner sees it, reading only the
        named keys' objects (the version list covers every other key): the
        table's buckets collect many objects across rows. A bucket
        that does not exist is read by the main account (it must still not
        exist afterwards)."""
        return bucket_state(self.owner.get(bucket, self.s3), bucket, *keys, max_objects=0)

    def iam_reader(self, *who, acct="main"):
        """iam_state of an account: its users, roles, groups and policies, and
        for the named users (table names, e.g. "s3only") and the table's role
        their policies and access keys."""
        if acct == "alt":
            return iam_state(self.alt_iam, *(self.names[u] for u in who))
        return iam_state(self.iam, *(self.names[u] for u in who), roles=(self.role,))

    def kms_reader(self):
        """Both accounts' KMS keys: the key lists, and for the table's two
        keys their state (enabled, pending deletion) and key policy."""
        def one(kms, key):
            try:
                md = kms.describe_key(KeyId=key)["KeyMetadata"]
                pol = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
            except ClientError as e:
                return ("error", e.response["Error"].get("Code"))
            return {f: md.get(f) for f in ("KeyState", "Enabled", "DeletionDate", "KeyUsage")}, pol

        def read():
            return {"keys": (self.state(("kmskeys", "main")), self.state(("kmskeys", "alt"))),
                    "main": one(self.kms, self.mkey), "alt": one(self.alt_kms, self.akey)}
        return read

    # -- requests
    def raw(self, who, method, target, body=b"", headers=None, **kw):
        """A SigV4 header-signed request by `who`, target sent byte-exact."""
        return signed(self.server, method, target, self.creds[who], body=body, headers=headers, **kw)

    def fresh(self, bucket, prefix="f"):
        """A new key with two versions (old tagged class=old, current class=cur)."""
        key = f"{prefix}-{uuid.uuid4().hex[:10]}"
        c = self.owner[bucket]
        v1 = c.put_object(Bucket=bucket, Key=key, Body=b"old-" + key.encode(), Tagging="class=old").get("VersionId")
        v2 = c.put_object(Bucket=bucket, Key=key, Body=b"new-" + key.encode(), Tagging="class=cur").get("VersionId")
        return {"key": key, "v1": v1, "v2": v2}

    def new_key(self, prefix="n"):
        return {"key": f"{prefix}-{uuid.uuid4().hex[:10]}"}


@pytest.fixture(scope="module")
def world(server):
    with tempfile.TemporaryDirectory(prefix="strongroom-atk-") as tmp:
        nosig2 = Server(os.path.join(tmp, "data"), ["--no-sigv2"]).start()
        try:
            yield World(server, nosig2)
        finally:
            nosig2.stop()


# ---------------------------------------------------------------- rows

@dataclass
class Row:
    id: str
    send: Callable
    want: tuple  # (status, code); code None on success, "" for a bodiless error (HEAD)
    watch: Optional[Callable] = None  # (w, x) -> [state specs] that must not change on a denial
    check: Optional[Callable] = None  # (w, x, resp) -> extra asserts
    setup: Optional[Callable] = None  # (w) -> x
    also: tuple = ()  # other exact answers (only where AWS's answer is genuinely either)
    deny: Optional[bool] = None  # state must be unchanged; default: want is an error
    skip: Optional[str] = None
    # (w, x) -> what the request addresses, snapshotted by denied() on a refusing row: a bucket name, a
    # (bucket, key, ...) tuple (bucket_state reading those keys), or a reader (IAM, KMS). Required when refusing.
    on: Optional[Callable] = None

    @property
    def refuses(self):
        return self.deny if self.deny is not None else self.want[0] >= 300


ROWS: list = []


def row(*a, **kw):
    r = Row(*a, **kw)
    assert r.id not in {x.id for x in ROWS}, r.id
    assert r.on is not None or not r.refuses, f"{r.id}: a refusing row names what it addresses (on=)"
    ROWS.append(r)
    return r


def sdk(fn):
    """An SDK call as a Resp (ClientError -> status and code)."""
    try:
        out = fn()
    except ClientError as e:
        r = e.response
        st = r["ResponseMetadata"]["HTTPStatusCode"]
        code = r["Error"].get("Code", "")
        if code == str(st):  # HEAD: no body, botocore puts the status
            code = ""
        return Resp(st, code)
    st = out.get("ResponseMetadata", {}).get("HTTPStatusCode", 200) if isinstance(out, dict) else 200
    return Resp(st, None, data=out)


def body_has(*needles, absent=()):
    def check(w, x, r):
        for n in needles:
            n = n(w, x) if callable(n) else n
            assert n.encode() in r.body, f"{n!r} not in {r.body[:500]!r}"
        for n in absent:
            n = n(w, x) if callable(n) else n
            assert n.encode() not in r.body, f"{n!r} leaked in {r.body[:500]!r}"
    return check


OK, OK204, DENIED, HEAD403 = (200, None), (204, None), (403, "AccessDenied"), (403, "")
# AWS code uncertain: a duplicated parameter is refused (400), or denied (403);
# a server that orders equal names differently from AWS's canonical query
# (sorted by name, then value) answers SignatureDoesNotMatch -- a refusal too.
# Never 200 with the data of either value.
DUP = ((400, "InvalidArgument"), (400, "InvalidRequest"), (403, "AccessDenied"), (403, "SignatureDoesNotMatch"))


# ======================================================================
# c1: encoded / duplicated query-parameter names
# ======================================================================

VERSION_NAMES = [
    ("plain", "versionId"),
    ("upper-hex", "version%49d"),
    ("lower-hex", "versio%6eId"),
    ("first-char", "%76ersionId"),
    ("all-encoded", "%76%65%72%73%69%6f%6e%49%64"),
]

# (op label, method, extra query before the version, body maker, needs a fresh object, action pinned)
VERSION_OPS = [
    ("GetObject", "GET", "", None, False, "s3:GetObjectVersion"),
    ("HeadObject", "HEAD", "", None, False, "s3:GetObjectVersion"),
    ("DeleteObject", "DELETE", "", None, True, "s3:DeleteObjectVersion"),
    ("GetObjectTagging", "GET", "tagging&", None, False, "s3:GetObjectVersionTagging"),
    ("PutObjectTagging", "PUT", "tagging&", lambda: tagging_xml({"evil": "1"}), True, "s3:PutObjectVersionTagging"),
    ("DeleteObjectTagging", "DELETE", "tagging&", None, True, "s3:DeleteObjectVersionTagging"),
    ("GetObjectAcl", "GET", "acl&", None, False, "s3:GetObjectVersionAcl"),
]


ON_VB = lambda w, x: [w.VB]  # noqa: E731  (the key: from the row's watch)


def _version_send(method, pre, name, make_body, fresh, who="nover", vid="v1"):
    def go(w, x):
        key = x["key"] if fresh else "doc"
        v = x[vid] if fresh else {"v1": w.v1, "v2": w.v2}[vid]
        body = make_body() if make_body else b""
        hs = {"content-md5": md5_b64(body)} if body else None
        return w.raw(who, method, f"/{w.VB}/{key}?{pre}{name}={v}", body=body, headers=hs)
    return go


for op, method, pre, mk, fresh, action in VERSION_OPS:
    for label, name in VERSION_NAMES:
        row(f"c1-{op}-versionId-{label}-needs-{action[3:]}",
            _version_send(method, pre, name, mk, fresh),
            HEAD403 if method == "HEAD" else DENIED,
            setup=(lambda w: w.fresh(w.VB)) if fresh else None,
            watch=(lambda w, x: [("obj", w.VB, x["key"])]) if fresh else (lambda w, x: [("obj", w.VB, "doc")]),
            on=ON_VB)


def _ver_ok_check(op):
    def check(w, x, r):
        if op == "GetObject":
            assert r.body == b"doc-v1-old", r.body
        elif op == "HeadObject":
            assert r.headers.get("x-amz-version-id") == w.v1
        elif op == "GetObjectTagging":
            assert b"<Value>old</Value>" in r.body, r.body
        elif op == "DeleteObject":
            vs, _ = w.versions(w.VB, x["key"])
            assert [v[0] for v in vs] == [x["v2"]], vs
        elif op == "PutObjectTagging":
            t = w.s3.get_object_tagging(Bucket=w.VB, Key=x["key"], VersionId=x["v1"])["TagSet"]
            assert t == [{"Key": "evil", "Value": "1"}], t
            t = w.s3.get_object_tagging(Bucket=w.VB, Key=x["key"])["TagSet"]
            assert t == [{"Key": "class", "Value": "cur"}], t
        elif op == "DeleteObjectTagging":
            assert w.s3.get_object_tagging(Bucket=w.VB, Key=x["key"], VersionId=x["v1"])["TagSet"] == []
            assert w.s3.get_object_tagging(Bucket=w.VB, Key=x["key"])["TagSet"] != []
        elif op == "GetObjectAcl":
            assert b"AccessControlPolicy" in r.body, r.body
    return check


for op, method, pre, mk, fresh, action in VERSION_OPS:
    for label, name in VERSION_NAMES[1:3]:
        ok = {"DeleteObject": OK204, "DeleteObjectTagging": OK204}.get(op, OK)
        row(f"c1-{op}-versionId-{label}-allowed-with-{action[3:]}",
            _version_send(method, pre, name, mk, fresh, who="ver"), ok,
            setup=(lambda w: w.fresh(w.VB)) if fresh else None, check=_ver_ok_check(op))

row("c1-GetObject-versionId-null-upper-hex-needs-GetObjectVersion",
    lambda w, x: w.raw("nover", "GET", f"/{w.VB}/doc?version%49d=null"), DENIED,
    watch=lambda w, x: [("obj", w.VB, "doc")], on=ON_VB)
row("c1-GetObject-current-without-versionId-allowed",
    lambda w, x: w.raw("nover", "GET", f"/{w.VB}/doc"), OK, check=lambda w, x, r: r.body == b"doc-v2-current" or
    pytest.fail(r.body))
# AWS query names are case-sensitive: `VersionId` / `versionid` are unknown
# parameters S3 ignores, so the request reads the current version (no
# s3:GetObjectVersion needed, and certainly not the old bytes)
for label, name in (("capital-V", "VersionId"), ("lowercase-i", "versionid"), ("encoded-lowercase-i", "versio%6Eid")):
    row(f"c1-GetObject-{label}-is-not-versionId-returns-current",
        _version_send("GET", "", name, None, False), OK,
        check=lambda w, x, r: (r.body == b"doc-v2-current") or pytest.fail(f"got {r.body!r}"))

# duplicated names: never 200 with the data of either version
for label, q in (("twice", "versionId={v1}&versionId={v2}"), ("plain-and-encoded", "versionId={v2}&version%49d={v1}"),
                 ("encoded-twice", "version%49d={v1}&%76ersionId={v2}")):
    row(f"c1-GetObject-duplicated-versionId-{label}-refused",
        lambda w, x, q=q: w.raw("nover", "GET", f"/{w.VB}/doc?" + q.format(v1=w.v1, v2=w.v2)), DUP[0], also=DUP[1:],
        watch=lambda w, x: [("obj", w.VB, "doc")], on=ON_VB)
    row(f"c1-DeleteObject-duplicated-versionId-{label}-refused",
        lambda w, x, q=q: w.raw("nover", "DELETE", f"/{w.VB}/{x['key']}?" + q.format(**x)), DUP[0], also=DUP[1:],
        setup=lambda w: w.fresh(w.VB), watch=lambda w, x: [("obj", w.VB, x["key"])], on=ON_VB)

# --- listing conditions (s3:prefix, s3:max-keys, s3:delimiter)


def _list(who, q):
    return lambda w, x: w.raw(who, "GET", f"/{w.LB}?{q}")


ON_LB = lambda w, x: [(w.LB, "secret/x", "public/a")]  # noqa: E731  a listing reads the bucket


NO_SECRET = body_has(absent=("<Key>secret/",))
for label, q in (("v2-plain", "list-type=2&prefix=secret/"), ("v2-pre%66ix", "list-type=2&pre%66ix=secret/"),
                 ("v2-%70refix", "list-type=2&%70refix=secret/"), ("v2-value-encoded", "list-type=2&prefix=secret%2F"),
                 ("v1-plain", "prefix=secret/"), ("v1-pre%66ix", "pre%66ix=secret/"),
                 ("v1-all-encoded", "%70%72%65%66%69%78=secret"), ("v2-encoded-list-type", "list%2Dtype=2&pre%66ix=secret")):
    row(f"c1-ListObjects-{label}-denied-prefix-secret", _list("lister", q), DENIED, on=ON_LB)
for label, q in (("v2-plain", "list-type=2&prefix=public/"), ("v2-pre%66ix", "list-type=2&pre%66ix=public/"),
                 ("v1-%70refix", "%70refix=public/")):
    row(f"c1-ListObjects-{label}-allowed-prefix-public-lists-only-public", _list("lister", q), OK,
        check=lambda w, x, r: (NO_SECRET(w, x, r), body_has("public/a")(w, x, r)))
for label, q in (("plain", "list-type=2&max-keys=1000"), ("max%2Dkeys", "list-type=2&max%2Dkeys=1000"),
                 ("max-key%73", "list-type=2&max-key%73=1000"), ("v1-encoded", "%6Dax-keys=101")):
    row(f"c1-ListObjects-max-keys-{label}-over-100-denied", _list("lister", q), DENIED, on=ON_LB)
for label, q in (("plain", "list-type=2&max-keys=50"), ("max%2Dkeys", "list-type=2&max%2Dkeys=50")):
    row(f"c1-ListObjects-max-keys-{label}-50-allowed", _list("lister", q), OK, check=body_has("<MaxKeys>50</MaxKeys>"))
for label, q in (("plain", "list-type=2&delimiter=x"), ("delimi%74er", "list-type=2&delimi%74er=x"),
                 ("%64elimiter-v1", "%64elimiter=x")):
    row(f"c1-ListObjects-delimiter-{label}-x-denied", _list("lister", q), DENIED, on=ON_LB)
row("c1-ListObjects-delimiter-encoded-slash-allowed", _list("lister", "list-type=2&delimi%74er=%2F"), OK,
    check=body_has("<Delimiter>/</Delimiter>"))
for label, q in (("twice", "list-type=2&prefix=public/&prefix=secret/"),
                 ("plain-and-encoded", "list-type=2&prefix=public/&pre%66ix=secret/"),
                 ("encoded-first", "list-type=2&%70refix=secret/&prefix=public/")):
    row(f"c1-ListObjects-duplicated-prefix-{label}-refused", _list("lister", q), DUP[0], also=DUP[1:], on=ON_LB)
# an Allow only for s3:prefix public/*: encoded names are the same parameter
row("c1-ListObjects-allow-only-public-plain-allowed", _list("listpub", "list-type=2&prefix=public/"), OK,
    check=NO_SECRET)
row("c1-ListObjects-allow-only-public-pre%66ix-allowed", _list("listpub", "list-type=2&pre%66ix=public/"), OK,
    check=lambda w, x, r: (NO_SECRET(w, x, r), body_has("public/a")(w, x, r)))
row("c1-ListObjects-allow-only-public-secret-denied", _list("listpub", "list-type=2&prefix=secret/"), DENIED,
    on=ON_LB)
row("c1-ListObjects-allow-only-public-%70refix-secret-denied", _list("listpub", "list-type=2&%70refix=secret/"), DENIED,
    on=ON_LB)
row("c1-ListObjects-allow-only-public-no-prefix-denied", _list("listpub", "list-type=2"), DENIED, on=ON_LB)
row("c1-ListObjects-allow-only-public-duplicated-prefix-refused",
    _list("listpub", "list-type=2&prefix=public/&pre%66ix=secret/"), DUP[0], also=DUP[1:], on=ON_LB)
row("c1-ListObjects-allow-only-public-dotdot-lists-nothing-secret",
    _list("listpub", "list-type=2&prefix=public/../secret/"), OK, check=NO_SECRET)
row("c1-ListObjectVersions-version%73-needs-ListBucketVersions", _list("lister", "version%73"), DENIED, on=ON_LB)
row("c1-ListObjectVersions-plain-needs-ListBucketVersions", _list("lister", "versions"), DENIED, on=ON_LB)

# --- multipart parameters (uploadId, partNumber)


def _mp(who, method, q, body=b"", key="mp"):
    def go(w, x):
        up = x.get("upload", w.U)
        return w.raw(who, method, f"/{w.MB}/{x.get('key', key)}?" + q.format(u=up), body=body,
                     headers={"content-md5": md5_b64(body)} if body and method == "POST" else None)
    return go


MP_WATCH = lambda w, x: [("uploads", w.MB), ("absent", w.MB, "mp")]  # noqa: E731
ON_MB = lambda w, x: [(w.MB, "plain")]  # noqa: E731
for label, q in (("plain", "partNumber=2&uploadId={u}"), ("part%4Eumber-upload%49d", "part%4Eumber=2&upload%49d={u}"),
                 ("uploa%64Id", "partNumber=2&uploa%64Id={u}"), ("%70artNumber", "%70artNumber=2&uploadId={u}")):
    row(f"c1-UploadPart-{label}-needs-PutObject", _mp("mpget", "PUT", q, b"evil-part"), DENIED, watch=MP_WATCH,
        on=ON_MB)
for label, q in (("plain", "uploadId={u}"), ("upload%49d", "upload%49d={u}"), ("%75ploadId", "%75ploadId={u}")):
    row(f"c1-ListParts-{label}-needs-ListMultipartUploadParts", _mp("mpget", "GET", q), DENIED, watch=MP_WATCH,
        on=ON_MB)
    row(f"c1-AbortMultipartUpload-{label}-needs-AbortMultipartUpload", _mp("mpget", "DELETE", q), DENIED,
        watch=MP_WATCH, on=ON_MB)
COMPLETE = (f'<CompleteMultipartUpload xmlns="{NS}"><Part><PartNumber>1</PartNumber>'
            f'<ETag>"{hashlib.md5(b"p" * 10).hexdigest()}"</ETag></Part></CompleteMultipartUpload>').encode()
row("c1-CompleteMultipartUpload-upload%49d-needs-PutObject", _mp("mpget", "POST", "upload%49d={u}", COMPLETE), DENIED,
    watch=MP_WATCH, on=ON_MB)
row("c1-CreateMultipartUpload-uploa%64s-needs-PutObject", _mp("mpget", "POST", "uploa%64s", key="new-mp"), DENIED,
    watch=lambda w, x: [("uploads", w.MB), ("absent", w.MB, "new-mp")], on=ON_MB)
row("c1-ListMultipartUploads-uploa%64s-needs-ListBucketMultipartUploads",
    lambda w, x: w.raw("mpget", "GET", f"/{w.MB}?uploa%64s"), DENIED, watch=lambda w, x: [("uploads", w.MB)], on=ON_MB)
row("c1-ListMultipartUploads-plain-needs-ListBucketMultipartUploads",
    lambda w, x: w.raw("mpget", "GET", f"/{w.MB}?uploads"), DENIED, watch=lambda w, x: [("uploads", w.MB)], on=ON_MB)


def _own_upload(w):
    key = f"own-{uuid.uuid4().hex[:8]}"
    up = w.s3.create_multipart_upload(Bucket=w.MB, Key=key)["UploadId"]
    w.s3.upload_part(Bucket=w.MB, Key=key, UploadId=up, PartNumber=1, Body=b"q" * 7)
    return {"key": key, "upload": up}


def _parts_of(w, x):
    return [(p["PartNumber"], p["Size"]) for p in
            w.s3.list_parts(Bucket=w.MB, Key=x["key"], UploadId=x["upload"]).get("Parts", [])]


row("c1-ListParts-upload%49d-allowed-with-ListMultipartUploadParts", _mp("mpall", "GET", "upload%49d={u}"), OK,
    setup=_own_upload, check=body_has("<PartNumber>1</PartNumber>"))
row("c1-UploadPart-part%4Eumber-upload%49d-allowed-with-PutObject",
    _mp("mpall", "PUT", "part%4Eumber=2&upload%49d={u}", b"second"), OK, setup=_own_upload,
    check=lambda w, x, r: _parts_of(w, x) == [(1, 7), (2, 6)] or pytest.fail(_parts_of(w, x)))
row("c1-AbortMultipartUpload-upload%49d-allowed-with-AbortMultipartUpload", _mp("mpall", "DELETE", "upload%49d={u}"),
    OK204, setup=_own_upload,
    check=lambda w, x, r: x["upload"] not in [u["UploadId"] for u in
                                              w.s3.list_multipart_uploads(Bucket=w.MB).get("Uploads", [])]
    or pytest.fail("upload survived"))
row("c1-ListMultipartUploads-uploa%64s-allowed-with-ListBucketMultipartUploads",
    lambda w, x: w.raw("mpall", "GET", f"/{w.MB}?uploa%64s"), OK, check=body_has("ListMultipartUploadsResult"))

# --- sub-resource names encoded: a user allowed Get/PutObject only


def _sub(who, method, target, body=b"", headers=None):
    def go(w, x):
        t = target(w, x) if callable(target) else target.format(SB=w.SB, LK=w.LK, key=x.get("key", "obj"))
        hs = dict(headers or {})
        if body:
            hs["content-md5"] = md5_b64(body)
        return w.raw(who, method, t, body=body, headers=hs)
    return go


until = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
RETENTION = f'<Retention xmlns="{NS}"><Mode>GOVERNANCE</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>'.encode()
LEGAL_ON = f'<LegalHold xmlns="{NS}"><Status>ON</Status></LegalHold>'.encode()
VERSIONING_ON = f'<VersioningConfiguration xmlns="{NS}"><Status>Enabled</Status></VersioningConfiguration>'.encode()
SSE_CFG = (f'<ServerSideEncryptionConfiguration xmlns="{NS}"><Rule><ApplyServerSideEncryptionByDefault>'
           f'<SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>'
           f'</ServerSideEncryptionConfiguration>').encode()
PAB_OFF = (f'<PublicAccessBlockConfiguration xmlns="{NS}"><BlockPublicAcls>false</BlockPublicAcls>'
           f'<IgnorePublicAcls>false</IgnorePublicAcls><BlockPublicPolicy>false</BlockPublicPolicy>'
           f'<RestrictPublicBuckets>false</RestrictPublicBuckets></PublicAccessBlockConfiguration>').encode()
LOCK_CFG = (f'<ObjectLockConfiguration xmlns="{NS}"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>'
            f'<DefaultRetention><Mode>COMPLIANCE</Mode><Years>50</Years></DefaultRetention></Rule>'
            f'</ObjectLockConfiguration>').encode()


def _policy_body(w):
    return json.dumps(doc(stmt("Allow", "s3:*", [arn(w.SB), arn(w.SB, "*")],
                               principal={"AWS": f"arn:aws:iam::{MAIN_ID}:user/{w.names['getput']}"}))).encode()


SUB_OBJ = lambda w, x: [("obj", w.SB, "obj")]  # noqa: E731
SUBRESOURCE_DENIALS = [
    # (label, method, target, body, watch)
    ("GetObjectTagging-tag%67ing", "GET", "/{SB}/obj?tag%67ing", b"", SUB_OBJ),
    ("GetObjectTagging-plain", "GET", "/{SB}/obj?tagging", b"", SUB_OBJ),
    ("PutObjectTagging-tag%67ing", "PUT", "/{SB}/obj?tag%67ing", tagging_xml({"evil": "1"}), SUB_OBJ),
    ("PutObjectTagging-%74agging", "PUT", "/{SB}/obj?%74agging=", tagging_xml({"evil": "1"}), SUB_OBJ),
    ("DeleteObjectTagging-tag%67ing", "DELETE", "/{SB}/obj?tag%67ing", b"", SUB_OBJ),
    ("GetObjectAcl-ac%6C", "GET", "/{SB}/obj?ac%6C", b"", SUB_OBJ),
    ("GetObjectAcl-plain", "GET", "/{SB}/obj?acl", b"", SUB_OBJ),
    ("GetObjectAttributes-attribute%73", "GET", "/{SB}/obj?attribute%73", b"", SUB_OBJ),
    ("GetObjectRetention-reten%74ion", "GET", "/{LK}/locked?reten%74ion", b"",
     lambda w, x: [("retention", w.LK, "locked")]),
    ("PutObjectRetention-reten%74ion", "PUT", "/{LK}/locked?reten%74ion", RETENTION,
     lambda w, x: [("retention", w.LK, "locked"), ("obj", w.LK, "locked")]),
    ("PutObjectRetention-plain", "PUT", "/{LK}/locked?retention", RETENTION,
     lambda w, x: [("retention", w.LK, "locked")]),
    ("GetObjectLegalHold-legal%2Dhold", "GET", "/{LK}/locked?legal%2Dhold", b"",
     lambda w, x: [("legal", w.LK, "locked")]),
    ("PutObjectLegalHold-legal%2Dhold", "PUT", "/{LK}/locked?legal%2Dhold", LEGAL_ON,
     lambda w, x: [("legal", w.LK, "locked"), ("obj", w.LK, "locked")]),
    ("PutObjectLegalHold-legal%2dhold-lower-hex", "PUT", "/{LK}/locked?legal%2dhold", LEGAL_ON,
     lambda w, x: [("legal", w.LK, "locked")]),
    ("PutObjectLockConfiguration-object%2Dlock", "PUT", "/{LK}?object%2Dlock", LOCK_CFG,
     lambda w, x: [("lockcfg", w.LK)]),
    ("GetBucketPolicy-polic%79", "GET", "/{SB}?polic%79", b"", lambda w, x: [("policy", w.SB)]),
    ("PutBucketPolicy-polic%79", "PUT", "/{SB}?polic%79", _policy_body, lambda w, x: [("policy", w.SB)]),
    ("PutBucketPolicy-plain", "PUT", "/{SB}?policy", _policy_body, lambda w, x: [("policy", w.SB)]),
    ("DeleteBucketPolicy-polic%79", "DELETE", "/{SB}?polic%79", b"", lambda w, x: [("policy", w.SB)]),
    ("GetBucketPolicyStatus-polic%79Status", "GET", "/{SB}?polic%79Status", b"", None),
    ("GetBucketVersioning-versionin%67", "GET", "/{SB}?versionin%67", b"", None),
    ("PutBucketVersioning-versionin%67", "PUT", "/{SB}?versionin%67", VERSIONING_ON,
     lambda w, x: [("versioning", w.SB)]),
    ("PutBucketVersioning-plain", "PUT", "/{SB}?versioning", VERSIONING_ON, lambda w, x: [("versioning", w.SB)]),
    ("ListMultipartUploads-uploa%64s", "GET", "/{SB}?uploa%64s", b"", None),
    ("ListObjectVersions-version%73", "GET", "/{SB}?version%73", b"", None),
    ("GetBucketTagging-tag%67ing", "GET", "/{SB}?tag%67ing", b"", None),
    ("PutBucketTagging-tag%67ing", "PUT", "/{SB}?tag%67ing", tagging_xml({"team": "red"}),
     lambda w, x: [("btags", w.SB)]),
    ("DeleteBucketTagging-tag%67ing", "DELETE", "/{SB}?tag%67ing", b"", lambda w, x: [("btags", w.SB)]),
    ("PutBucketEncryption-encryp%74ion", "PUT", "/{SB}?encryp%74ion", SSE_CFG, lambda w, x: [("encryption", w.SB)]),
    ("GetBucketEncryption-encryp%74ion", "GET", "/{SB}?encryp%74ion", b"", None),
    ("GetPublicAccessBlock-public%41ccessBlock", "GET", "/{SB}?public%41ccessBlock", b"", None),
    ("PutPublicAccessBlock-public%41ccessBlock", "PUT", "/{SB}?public%41ccessBlock", PAB_OFF,
     lambda w, x: [("pab", w.SB)]),
    ("DeletePublicAccessBlock-public%41ccessBlock", "DELETE", "/{SB}?public%41ccessBlock", b"",
     lambda w, x: [("pab", w.SB)]),
    ("GetBucketAcl-ac%6C", "GET", "/{SB}?ac%6C", b"", None),
    ("GetBucketLocation-locatio%6E", "GET", "/{SB}?locatio%6E", b"", None),
]
for label, method, target, body, watch in SUBRESOURCE_DENIALS:
    def go(w, x, method=method, target=target, body=body, label=label):
        b = body(w) if callable(body) else body
        # GetObjectAttributes needs its attribute list, or it is malformed
        hs = {"x-amz-object-attributes": "ETag"} if "Attributes" in label else None
        return _sub("getput", method, target, b, headers=hs)(w, x)
    # the target's bucket and object (bucket_state reads every bucket configuration)
    on = (lambda w, x: [(w.LK, "locked")]) if "{LK}" in target else (lambda w, x: [(w.SB, "obj")])
    row(f"c1-{label}-denied-to-Get-PutObject-user", go, DENIED, watch=watch, on=on)
ON_SB = lambda w, x: [(w.SB, "obj")]  # noqa: E731
row("c1-PutObjectAcl-ac%6C-denied-to-Get-PutObject-user",
    _sub("getput", "PUT", "/{SB}/obj?ac%6C", headers={"x-amz-acl": "private"}), DENIED, watch=SUB_OBJ, on=ON_SB)
row("c1-DeleteObjects-dele%74e-per-key-AccessDenied-without-DeleteObject",
    _sub("getput", "POST", "/{SB}?dele%74e", delete_xml([("obj", None)])), OK, deny=True, watch=SUB_OBJ, on=ON_SB,
    check=body_has("<Code>AccessDenied</Code>", absent=("<Deleted>",)))
row("c1-CreateMultipartUpload-uploa%64s-allowed-with-PutObject",
    _sub("getput", "POST", "/{SB}/{key}?uploa%64s"), OK, setup=lambda w: w.new_key("mpu"),
    check=lambda w, x, r: [w.s3.abort_multipart_upload(Bucket=w.SB, Key=u["Key"], UploadId=u["UploadId"])
                           for u in w.s3.list_multipart_uploads(Bucket=w.SB).get("Uploads", [])
                           if u["Key"] == x["key"]] or pytest.fail("no upload was created"))
# the same encoded sub-resources for a user who holds those rights
for label, target, needle in (
        ("GetObjectTagging-tag%67ing", "/{SB}/obj?tag%67ing", "<Key>t</Key>"),
        ("GetBucketPolicy-polic%79", "/{SB}?polic%79", "s3:DeleteBucket"),
        ("GetBucketVersioning-versionin%67", "/{SB}?versionin%67", "VersioningConfiguration"),
        ("GetObjectRetention-reten%74ion", "/{LK}/locked?reten%74ion", "GOVERNANCE"),
        ("GetObjectLegalHold-legal%2Dhold", "/{LK}/locked?legal%2Dhold", "OFF"),
        ("ListMultipartUploads-uploa%64s", "/{SB}?uploa%64s", "ListMultipartUploadsResult"),
        ("GetBucketTagging-tag%67ing", "/{SB}?tag%67ing", "<Value>blue</Value>")):
    row(f"c1-{label}-allowed-with-the-right", _sub("subok", "GET", target), OK, check=body_has(needle))
row("c1-PutObjectTagging-tag%67ing-allowed-with-PutObjectTagging",
    _sub("subok", "PUT", "/{SB}/{key}?tag%67ing", tagging_xml({"ok": "1"})), OK,
    setup=lambda w: (w.s3.put_object(Bucket=w.SB, Key="tagme", Body=b"t"), {"key": "tagme"})[1],
    check=lambda w, x, r: w.s3.get_object_tagging(Bucket=w.SB, Key="tagme")["TagSet"] == [{"Key": "ok", "Value": "1"}]
    or pytest.fail("tags not set"))


# ======================================================================
# c2: copy-source forms (attacker: the other account's root)
# ======================================================================

COPY_FORMS = [
    # (label, header template, source key for the allowed twin or None)
    ("leading-slash", "/{b}/secret", "secret"),
    ("no-slash", "{b}/secret", "secret"),
    ("encoded-slash-upper", "%2F{b}/secret", "secret"),
    ("encoded-slash-lower", "%2f{b}/secret", "secret"),
    ("double-slash", "//{b}/secret", None),
    ("trailing-query", "/{b}/secret?x", None),
    ("encoded-question-mark", "{b}/se%3Fcret", "se?cret"),
    ("raw-question-mark", "{b}/se?cret", None),
    ("raw-plus", "{b}/a+b", None),  # AWS may read '+' as a space: no allowed twin
    ("encoded-plus", "{b}/a%2Bb", "a+b"),
    ("encoded-space", "{b}/a%20b", "a b"),
    ("unicode", "{b}/%E2%82%AC", "€"),
    ("old-version", "{b}/secret?versionId={old}", "secret@old"),
    ("old-version-encoded-name", "{b}/secret?version%49d={old}", None),
    ("encoded-bucket-separator", "{b}%2Fsecret", None),
    ("encoded-bucket-name", "%61{b1}/secret", None),
]


def _src(w, bucket, tmpl):
    return tmpl.format(b=bucket, b1=bucket[1:], old=w.copy_src[bucket])


def _copy(who, bucket_attr, tmpl, dst_bucket_attr="ALTB"):
    def go(w, x):
        dst = getattr(w, dst_bucket_attr)
        return w.raw(who, "PUT", f"/{dst}/{x['key']}", headers={"x-amz-copy-source": _src(w, getattr(w, bucket_attr), tmpl)})
    return go


def _upc(who, bucket_attr, tmpl):
    def go(w, x):
        return w.raw(who, "PUT", f"/{w.ALTB}/{x['key']}?partNumber=1&uploadId={x['upload']}",
                     headers={"x-amz-copy-source": _src(w, getattr(w, bucket_attr), tmpl)})
    return go


def _alt_upload(w):
    key = f"upc-{uuid.uuid4().hex[:8]}"
    return {"key": key, "upload": w.alt_s3.create_multipart_upload(Bucket=w.ALTB, Key=key)["UploadId"]}


def _alt_parts(w, x):
    return w.alt_s3.list_parts(Bucket=w.ALTB, Key=x["key"], UploadId=x["upload"]).get("Parts", [])


def _expected_bytes(w, bucket, src):
    tag = "victim" if bucket == w.VICTIM else "shared"
    if src == "secret":
        return f"{tag}-secret".encode()
    if src == "secret@old":
        return f"{tag}-old".encode()
    return f"{tag}-{src}".encode()


# a copy addresses its destination and reads its source (the victim's bucket: nothing there may change either)
ON_COPY = lambda w, x: [w.ALTB, (w.VICTIM, "secret")]  # noqa: E731
for label, tmpl, twin in COPY_FORMS:
    # s3s cannot parse "//bucket/key" as a copy source: refused before any decision
    unparsable = ((400, "InvalidArgument"),) if label == "double-slash" else ()
    row(f"c2-CopyObject-source-{label}-denied-cross-account",
        _copy("alt", "VICTIM", tmpl), DENIED, also=unparsable, setup=lambda w: w.new_key("cp"),
        watch=lambda w, x: [("absent", w.ALTB, x["key"])], on=ON_COPY)
    row(f"c2-UploadPartCopy-source-{label}-denied-cross-account",
        _upc("alt", "VICTIM", tmpl), DENIED, also=unparsable, setup=_alt_upload,
        watch=lambda w, x: [("parts", w.ALTB, x["key"], x["upload"])], on=ON_COPY,
        check=lambda w, x, r: _alt_parts(w, x) == [] or pytest.fail(f"a part was copied: {_alt_parts(w, x)}"))
    if twin is None:
        continue

    def copied(w, x, r, twin=twin):
        got = w.alt_s3.get_object(Bucket=w.ALTB, Key=x["key"])["Body"].read()
        assert got == _expected_bytes(w, w.SHARED, twin), got

    def part_copied(w, x, r, twin=twin):
        parts = _alt_parts(w, x)
        assert len(parts) == 1, parts
        w.alt_s3.complete_multipart_upload(Bucket=w.ALTB, Key=x["key"], UploadId=x["upload"], MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": parts[0]["ETag"]}]})
        got = w.alt_s3.get_object(Bucket=w.ALTB, Key=x["key"])["Body"].read()
        assert got == _expected_bytes(w, w.SHARED, twin), got

    row(f"c2-CopyObject-source-{label}-allowed-by-bucket-policy", _copy("alt", "SHARED", tmpl), OK,
        setup=lambda w: w.new_key("cp"), check=copied)
    row(f"c2-UploadPartCopy-source-{label}-allowed-by-bucket-policy", _upc("alt", "SHARED", tmpl), OK,
        setup=_alt_upload, check=part_copied)


def _copy_same(who, q):
    def go(w, x):
        return w.raw(who, "PUT", f"/{w.VB}/{x['key']}",
                     headers={"x-amz-copy-source": f"{w.VB}/doc" + q.format(v1=w.v1)})
    return go


ON_VB_DOC = lambda w, x: [(w.VB, "doc")]  # noqa: E731
row("c2-CopyObject-source-versionId-needs-GetObjectVersion", _copy_same("nover", "?versionId={v1}"), DENIED,
    setup=lambda w: w.new_key("cpv"), watch=lambda w, x: [("absent", w.VB, x["key"])], on=ON_VB_DOC)
# AWS code uncertain: whether S3 reads `version%49d` inside x-amz-copy-source
# as versionId (-> 403) or as an unknown parameter (-> copies the current
# version, 200). Either way the old version's bytes must not be copied.
row("c2-CopyObject-source-version%49d-never-copies-the-old-version", _copy_same("nover", "?version%49d={v1}"), DENIED,
    also=(OK, (404, "NoSuchKey")), setup=lambda w: w.new_key("cpv"), watch=lambda w, x: [("absent", w.VB, x["key"])],
    on=ON_VB_DOC,
    check=lambda w, x, r: r.status >= 300 or w.s3.get_object(Bucket=w.VB, Key=x["key"])["Body"].read()
    == b"doc-v2-current" or pytest.fail("the old version was copied"))
row("c2-CopyObject-source-without-version-allowed-with-GetObject", _copy_same("nover", ""), OK,
    setup=lambda w: w.new_key("cpv"),
    check=lambda w, x, r: w.s3.get_object(Bucket=w.VB, Key=x["key"])["Body"].read() == b"doc-v2-current"
    or pytest.fail("wrong bytes"))
row("c2-CopyObject-source-versionId-allowed-with-GetObjectVersion", _copy_same("ver", "?versionId={v1}"), OK,
    setup=lambda w: w.new_key("cpv"),
    check=lambda w, x, r: w.s3.get_object(Bucket=w.VB, Key=x["key"])["Body"].read() == b"doc-v1-old"
    or pytest.fail("wrong bytes"))
row("c2-CopyObject-same-account-user-without-source-read-denied",
    lambda w, x: w.raw("getput", "PUT", f"/{w.SB}/{x['key']}", headers={"x-amz-copy-source": f"%2F{w.VICTIM}/secret"}),
    DENIED, setup=lambda w: w.new_key("cpu"), watch=lambda w, x: [("absent", w.SB, x["key"])],
    on=lambda w, x: [w.SB, (w.VICTIM, "secret")])


# ======================================================================
# c3: pre-signed URL and Authorization tampering
# ======================================================================

RENAMES = {
    "plain": {},
    "X-Amz-%53ignedHeaders": {"X-Amz-SignedHeaders": "X-Amz-%53ignedHeaders"},
    "X-Amz-%45xpires": {"X-Amz-Expires": "X-Amz-%45xpires"},
    "X-Amz-%53ignature": {"X-Amz-Signature": "X-Amz-%53ignature"},
    "X-Amz-%43redential": {"X-Amz-Credential": "X-Amz-%43redential"},
    "X-Amz-%41lgorithm": {"X-Amz-Algorithm": "X-Amz-%41lgorithm"},
    "x-amz-signedheaders-lowercase-hex": {"X-Amz-SignedHeaders": "X-Amz-%53igned%48eaders"},
}
SSE_C_KEY = b"k" * 32
UNSIGNED_HEADERS = {
    "copy-source": (lambda w: {"x-amz-copy-source": f"{w.VICTIM}/secret"}, False),
    "tagging": (lambda w: {"x-amz-tagging": "evil=1"}, False),
    "meta": (lambda w: {"x-amz-meta-evil": "1"}, False),
    "website-redirect": (lambda w: {"x-amz-website-redirect-location": "/evil"}, False),
    "sse-c": (lambda w: {"x-amz-server-side-encryption-customer-algorithm": "AES256",
                         "x-amz-server-side-encryption-customer-key": base64.b64encode(SSE_C_KEY).decode(),
                         "x-amz-server-side-encryption-customer-key-md5": md5_b64(SSE_C_KEY)}, True),
}
UNSIGNED_MSG = "There were headers present in the request which were not signed"
# c3 requests address the pre-sign bucket (its object "existing"); those that carry an x-amz-copy-source
# also name the victim's secret
ON_PB = lambda w, x: [(w.PB, "existing")]  # noqa: E731
ON_PB_VICTIM = lambda w, x: [(w.PB, "existing"), (w.VICTIM, "secret")]  # noqa: E731


def _presigned_put(rename, extra, secure):
    def go(w, x):
        t = presign_v4(w.server, "PUT", f"/{w.PB}/{x['key']}", MAIN, rename=rename, secure=secure)
        return send(w.server, "PUT", t, dict(extra(w), **{"Content-Length": "5"}), b"evil!", secure=secure)
    return go


# Strongroom refuses an authentication parameter whose name arrives
# percent-encoded (no client writes one; AWS would decode it and judge the
# request as if it were plain). The refusal comes before anything is read.
ENCODED_AUTH = (400, "AuthorizationQueryParametersError")
for rlabel, rename in RENAMES.items():
    for hlabel, (extra, secure) in UNSIGNED_HEADERS.items():
        row(f"c3-presigned-PUT-{rlabel}-unsigned-{hlabel}-refused", _presigned_put(rename, extra, secure),
            ENCODED_AUTH if rename else DENIED,
            setup=lambda w: w.new_key("ps"), watch=lambda w, x: [("absent", w.PB, x["key"])],
            on=ON_PB_VICTIM if hlabel == "copy-source" else ON_PB,
            check=body_has("must not be percent-encoded" if rename else UNSIGNED_MSG))
    if rename:
        row(f"c3-presigned-PUT-{rlabel}-without-extra-headers-refused", _presigned_put(rename, lambda w: {}, False),
            ENCODED_AUTH, setup=lambda w: w.new_key("ps"), watch=lambda w, x: [("absent", w.PB, x["key"])], on=ON_PB)
    else:
        row(f"c3-presigned-PUT-{rlabel}-without-extra-headers-works", _presigned_put(rename, lambda w: {}, False), OK,
            setup=lambda w: w.new_key("ps"),
            check=lambda w, x, r: w.s3.get_object(Bucket=w.PB, Key=x["key"])["Body"].read() == b"evil!"
            or pytest.fail("not stored"))
row("c3-presigned-PUT-signed-meta-header-works",
    lambda w, x: send(w.server, "PUT", presign_v4(w.server, "PUT", f"/{w.PB}/{x['key']}", MAIN,
                                                  signed_headers={"x-amz-meta-ok": "1"}),
                      {"x-amz-meta-ok": "1", "Content-Length": "2"}, b"ok"), OK,
    setup=lambda w: w.new_key("ps"),
    check=lambda w, x, r: w.s3.head_object(Bucket=w.PB, Key=x["key"])["Metadata"] == {"ok": "1"}
    or pytest.fail("metadata lost"))


def _get_presigned(expires=300, rename=None, amz_date=None, region="us-east-1", service="s3", key="existing",
                   creds=MAIN):
    def go(w, x):
        return send(w.server, "GET", presign_v4(w.server, "GET", f"/{w.PB}/{key}", creds, expires=expires,
                                                rename=rename, amz_date=amz_date, region=region, service=service))
    return go


PB_EXISTING = lambda w, x: [("obj", w.PB, "existing")]  # noqa: E731
row("c3-presigned-expires-604801-refused", _get_presigned(604801), (400, "AuthorizationQueryParametersError"),
    on=ON_PB)
row("c3-presigned-encoded-X-Amz-%45xpires-604801-refused", _get_presigned(604801, RENAMES["X-Amz-%45xpires"]),
    (400, "AuthorizationQueryParametersError"), on=ON_PB)
row("c3-presigned-encoded-X-Amz-%45xpires-10-years-refused",
    _get_presigned(315360000, RENAMES["X-Amz-%45xpires"]), (400, "AuthorizationQueryParametersError"), on=ON_PB)
row("c3-presigned-encoded-X-Amz-%45xpires-604800-refused", _get_presigned(604800, RENAMES["X-Amz-%45xpires"]),
    ENCODED_AUTH, on=ON_PB)
row("c3-presigned-expired-refused", _get_presigned(60, amz_date=ago(7200)), DENIED, on=ON_PB,
    check=body_has("Request has expired"))
row("c3-presigned-expired-with-X-Amz-%45xpires-refused", _get_presigned(60, RENAMES["X-Amz-%45xpires"], ago(7200)),
    ENCODED_AUTH, on=ON_PB)
row("c3-presigned-expired-with-X-Amz-%44ate-refused", _get_presigned(60, {"X-Amz-Date": "X-Amz-%44ate"}, ago(7200)),
    ENCODED_AUTH, on=ON_PB)
row("c3-presigned-expired-PUT-refused",
    lambda w, x: send(w.server, "PUT", presign_v4(w.server, "PUT", f"/{w.PB}/{x['key']}", MAIN, expires=60,
                                                  amz_date=ago(7200)), {"Content-Length": "1"}, b"x"), DENIED,
    setup=lambda w: w.new_key("ps"), watch=lambda w, x: [("absent", w.PB, x["key"])], on=ON_PB)


def _with_auth(method, auth, key="existing", body=b"", extra=None, rename=None):
    def go(w, x):
        k = x.get("key", key)
        t = presign_v4(w.server, method, f"/{w.PB}/{k}", MAIN, rename=rename)
        hs = dict(extra or {}, Authorization=auth(w, method, f"/{w.PB}/{k}"))
        if method == "PUT":
            hs["Content-Length"] = str(len(body))
        return send(w.server, method, t, hs, body)
    return go


def _other_header_sig(w, method, target):
    hs, *_ = sigv4.sign(method, w.server.http + target, w.creds["nover"], sigv4.EMPTY)
    return hs["authorization"]


ONE_AUTH = (400, "InvalidArgument")
row("c3-presigned-plus-bogus-Authorization-refused",
    _with_auth("GET", lambda w, m, t: "AWS4-HMAC-SHA256 Credential=bogus"), ONE_AUTH, on=ON_PB,
    check=body_has("Only one auth mechanism allowed"))
row("c3-presigned-plus-other-users-valid-Authorization-refused", _with_auth("GET", _other_header_sig), ONE_AUTH,
    on=ON_PB)
row("c3-presigned-plus-SigV2-Authorization-refused",
    _with_auth("GET", lambda w, m, t: sigv2_header(m, t, w.creds["nover"])["Authorization"],
               extra={"Date": sigv2_header("GET", "/", MAIN)["Date"]}), ONE_AUTH, on=ON_PB)
row("c3-presigned-X-Amz-%41lgorithm-plus-Authorization-refused",
    _with_auth("GET", _other_header_sig, rename=RENAMES["X-Amz-%41lgorithm"]), ONE_AUTH, on=ON_PB)
row("c3-presigned-PUT-plus-Authorization-and-unsigned-meta-refused",
    _with_auth("PUT", _other_header_sig, body=b"x", extra={"x-amz-meta-evil": "1"}), ONE_AUTH,
    setup=lambda w: w.new_key("ps"), watch=lambda w, x: [("absent", w.PB, x["key"])], on=ON_PB)

LOWER = lambda a: "aws4-hmac-sha256" + a[len("AWS4-HMAC-SHA256"):]  # noqa: E731
row("c3-header-auth-lowercase-algorithm-refused",
    lambda w, x: w.raw("main", "GET", f"/{w.PB}/existing", auth_rewrite=LOWER), ONE_AUTH,  # AWS code uncertain
    on=ON_PB, check=body_has("Unsupported Authorization Type"))
row("c3-header-auth-lowercase-algorithm-unsigned-meta-PUT-refused",
    lambda w, x: w.raw("main", "PUT", f"/{w.PB}/{x['key']}", body=b"x", auth_rewrite=LOWER,
                       unsigned_headers={"x-amz-meta-evil": "1"}), ONE_AUTH,  # AWS code uncertain
    setup=lambda w: w.new_key("ps"), watch=lambda w, x: [("absent", w.PB, x["key"])], on=ON_PB)
row("c3-header-auth-lowercase-algorithm-unsigned-copy-source-refused",
    lambda w, x: w.raw("main", "PUT", f"/{w.PB}/{x['key']}", auth_rewrite=LOWER,
                       unsigned_headers={"x-amz-copy-source": f"{w.VICTIM}/secret"}), ONE_AUTH,  # AWS code uncertain
    setup=lambda w: w.new_key("ps"), watch=lambda w, x: [("absent", w.PB, x["key"])], on=ON_PB_VICTIM)
row("c3-header-auth-unsigned-meta-refused",
    lambda w, x: w.raw("main", "PUT", f"/{w.PB}/{x['key']}", body=b"x", unsigned_headers={"x-amz-meta-evil": "1"}),
    DENIED, setup=lambda w: w.new_key("ps"), watch=lambda w, x: [("absent", w.PB, x["key"])], on=ON_PB)
row("c3-header-auth-unsigned-copy-source-refused",
    lambda w, x: w.raw("main", "PUT", f"/{w.PB}/{x['key']}",
                       unsigned_headers={"x-amz-copy-source": f"{w.VICTIM}/secret"}),
    DENIED, setup=lambda w: w.new_key("ps"), watch=lambda w, x: [("absent", w.PB, x["key"])], on=ON_PB_VICTIM)

SDNM = (403, "SignatureDoesNotMatch")


def _reuse(method, target_of, body=b""):
    """A URL pre-signed for GET /PB/existing, sent with another method/target."""
    def go(w, x):
        t = presign_v4(w.server, "GET", f"/{w.PB}/existing", MAIN)
        return send(w.server, method, target_of(w, t), {"Content-Length": str(len(body))} if method == "PUT" else {},
                    body)
    return go


row("c3-presigned-GET-used-for-PUT-refused", _reuse("PUT", lambda w, t: t, b"overwrite"), SDNM, watch=PB_EXISTING,
    on=ON_PB)
row("c3-presigned-GET-used-for-DELETE-refused", _reuse("DELETE", lambda w, t: t), SDNM, watch=PB_EXISTING, on=ON_PB)
row("c3-presigned-GET-used-for-HEAD-refused", _reuse("HEAD", lambda w, t: t), HEAD403, on=ON_PB)
row("c3-presigned-GET-key-changed-refused", _reuse("GET", lambda w, t: t.replace("/existing?", "/doc?")), SDNM,
    on=lambda w, x: [(w.PB, "existing", "doc")])
row("c3-presigned-GET-bucket-changed-refused",
    _reuse("GET", lambda w, t: t.replace(f"/{w.PB}/existing?", f"/{w.VICTIM}/secret?")), SDNM, on=ON_PB_VICTIM)
row("c3-presigned-GET-plus-tagging-refused", _reuse("GET", lambda w, t: t + "&tagging"), SDNM, on=ON_PB)
row("c3-presigned-GET-plus-tag%67ing-refused", _reuse("GET", lambda w, t: t + "&tag%67ing"), SDNM, on=ON_PB)
row("c3-presigned-GET-plus-uploads-POST-refused", _reuse("POST", lambda w, t: t + "&uploads"), SDNM,
    watch=lambda w, x: [("uploads", w.PB)], on=ON_PB)
row("c3-presigned-GET-unmodified-works", _reuse("GET", lambda w, t: t), OK,
    check=lambda w, x, r: r.body == b"presign-existing" or pytest.fail(r.body))

INVALID_KEY = (403, "InvalidAccessKeyId")
row("c3-presigned-by-deactivated-key-refused", lambda w, x: send(w.server, "GET", w.tk_get), INVALID_KEY, on=ON_PB)
row("c3-presigned-PUT-by-deactivated-key-refused",
    lambda w, x: send(w.server, "PUT", w.tk_put, {"Content-Length": "1"}, b"x"), INVALID_KEY,
    watch=lambda w, x: [("absent", w.PB, "tempkey-put")], on=ON_PB)
row("c3-header-signed-by-deactivated-key-refused",
    lambda w, x: w.raw("tempkey", "GET", f"/{w.PB}/existing"), INVALID_KEY, on=ON_PB)
row("c3-presigned-by-deleted-user-refused", lambda w, x: send(w.server, "GET", w.doomed_get), INVALID_KEY, on=ON_PB)
row("c3-header-signed-by-deleted-user-refused", lambda w, x: w.raw("doomed", "GET", f"/{w.PB}/existing"), INVALID_KEY,
    on=ON_PB)

AHM, AQPE = (400, "AuthorizationHeaderMalformed"), (400, "AuthorizationQueryParametersError")
row("c3-header-scope-wrong-region-refused", lambda w, x: w.raw("main", "GET", f"/{w.PB}/existing", region="eu-west-1"),
    AHM, on=ON_PB)
row("c3-query-scope-wrong-region-refused", _get_presigned(region="eu-west-1"), AQPE, on=ON_PB)
row("c3-query-scope-wrong-region-X-Amz-%43redential-refused",
    _get_presigned(region="eu-west-1", rename=RENAMES["X-Amz-%43redential"]), AQPE, on=ON_PB)
for svc in ("sts", "iam", "kms"):
    row(f"c3-header-scope-service-{svc}-refused",
        lambda w, x, svc=svc: w.raw("main", "GET", f"/{w.PB}/existing", service=svc), AHM, on=ON_PB)
    row(f"c3-query-scope-service-{svc}-refused", _get_presigned(service=svc), AQPE, on=ON_PB)
row("c3-header-scope-service-iam-PUT-refused",
    lambda w, x: w.raw("main", "PUT", f"/{w.PB}/{x['key']}", body=b"x", service="iam"), AHM,
    setup=lambda w: w.new_key("ps"), watch=lambda w, x: [("absent", w.PB, x["key"])], on=ON_PB)

# --- SigV2 on the --no-sigv2 server: refused however the names are spelled
V2_OFF = (403, "AccessDenied")
V2_OFF_ALSO = ((400, "InvalidRequest"),)  # AWS (SigV4-only regions): "Please use AWS4-HMAC-SHA256"
ON_NB = lambda w, x: [(w.NB, "k", *([x["key"]] if "key" in x else []))]  # noqa: E731  (the --no-sigv2 server's bucket)


def _v2off(method, rename=None, key="k", body=b""):
    def go(w, x):
        srv = w.nosig2
        t = presign_v2(method, f"/{w.NB}/{x.get('key', key)}", MAIN, int(time.time()) + 300, rename=rename)
        return send(srv, method, t, {"Content-Length": str(len(body))} if method == "PUT" else {}, body)
    return go


V2_NAMES = {"plain": None, "AWSAccessKey%49d": {"AWSAccessKeyId": "AWSAccessKey%49d"},
            "%41WSAccessKeyId": {"AWSAccessKeyId": "%41WSAccessKeyId"},
            "%53ignature": {"Signature": "%53ignature"}, "%45xpires": {"Expires": "%45xpires"}}
for label, rename in V2_NAMES.items():
    row(f"c3-sigv2-presigned-GET-{label}-refused-by-no-sigv2", _v2off("GET", rename),
        ENCODED_AUTH if rename else V2_OFF, also=V2_OFF_ALSO, on=ON_NB)
row("c3-sigv2-presigned-PUT-AWSAccessKey%49d-refused-by-no-sigv2",
    _v2off("PUT", V2_NAMES["AWSAccessKey%49d"], body=b"x"), ENCODED_AUTH,
    setup=lambda w: w.new_key("v2"), on=ON_NB,
    check=lambda w, x, r: "Contents" not in w.nosig2.client().list_objects_v2(Bucket=w.NB, Prefix=x["key"])
    or pytest.fail("stored"))
row("c3-sigv2-header-refused-by-no-sigv2",
    lambda w, x: send(w.nosig2, "GET", f"/{w.NB}/k", sigv2_header("GET", f"/{w.NB}/k", MAIN)), V2_OFF,
    also=V2_OFF_ALSO, on=ON_NB)
row("c3-sigv4-works-on-no-sigv2-server",
    lambda w, x: signed(w.nosig2, "GET", f"/{w.NB}/k", MAIN), OK,
    check=lambda w, x, r: r.body == b"v4-only" or pytest.fail(r.body))


# --- SigV2 pre-signed URLs (server accepts SigV2) with sub-resources appended
def _v2url(w, method, bucket, key=None, **kw):
    v2 = w.c.get("main-v2") or w.c.setdefault("main-v2", w.client("main", signature_version="s3"))
    params = {"Bucket": bucket} if key is None else {"Bucket": bucket, "Key": key}
    op = {"GET": "get_object" if key else "list_objects", "PUT": "put_object"}[method]
    url = v2.generate_presigned_url(op, Params=params, HttpMethod=method, **kw)
    return url[len(w.server.http):]


def _v2append(method, bucket_attr, key, extra, body=b""):
    def go(w, x):
        t = _v2url(w, method, getattr(w, bucket_attr), key) + extra
        hs = {"Content-Length": str(len(body))} if method == "PUT" else {}
        return send(w.server, method, t, hs, body)
    return go


# a sub-resource SigV2 signs changes the string to sign (SignatureDoesNotMatch);
# one it does not sign is refused outright (AccessDenied: sign with SigV4)
V2_UNSIGNED = (403, "AccessDenied")
V2_SIGNED_SUBS = {"tagging", "acl", "policy", "versioning", "uploads"}
for sub in ("retention", "legal-hold", "tagging", "acl", "legal%2Dhold"):
    row(f"c3-sigv2-presigned-GetObject-plus-{sub}-refused", _v2append("GET", "LK", "locked", "&" + sub),
        SDNM if sub in V2_SIGNED_SUBS else V2_UNSIGNED, on=lambda w, x: [(w.LK, "locked")])  # AWS code uncertain
for sub in ("encryption", "policyStatus", "policy", "versioning", "tagging", "publicAccessBlock", "uploads"):
    row(f"c3-sigv2-presigned-ListObjects-plus-{sub}-refused", _v2append("GET", "SB", None, "&" + sub),
        SDNM if sub in V2_SIGNED_SUBS else V2_UNSIGNED, on=ON_SB)  # AWS code uncertain
row("c3-sigv2-presigned-PutObject-plus-tagging-refused",
    _v2append("PUT", "SB", "obj", "&tagging", tagging_xml({"evil": "1"})), SDNM, watch=SUB_OBJ,
    on=ON_SB)  # AWS code uncertain
row("c3-sigv2-presigned-GetObject-unmodified-works", _v2append("GET", "LK", "locked", ""), OK,
    check=lambda w, x, r: r.body == b"locked" or pytest.fail(r.body))
row("c3-sigv2-presigned-expires-over-7-days-refused",
    lambda w, x: send(w.server, "GET", _v2url(w, "GET", w.PB, "existing", ExpiresIn=8 * 86400)),
    AQPE, also=(DENIED,), on=ON_PB)  # AWS code uncertain (AWS itself accepts long SigV2 lifetimes)
row("c3-sigv2-presigned-%45xpires-over-7-days-refused",
    lambda w, x: send(w.server, "GET", presign_v2("GET", f"/{w.PB}/existing", MAIN, int(time.time()) + 8 * 86400,
                                                  rename={"Expires": "%45xpires"})),
    AQPE, also=(DENIED,), on=ON_PB)  # AWS code uncertain


# ======================================================================
# c4: POST Object (browser form uploads)
# ======================================================================

def _post(who, key, conditions=None, fields=None, expires=300, override=None, file_ct=None, drop=()):
    def go(w, x):
        k = x.get("key", key) if key is None else key.format(u=x.get("u", ""))
        c = w.c[who] if who != "anon" else None
        if c is None:
            form = {"key": k}
        else:
            p = c.generate_presigned_post(w.POSTB, k, Fields=fields, Conditions=conditions, ExpiresIn=expires)
            form = dict(p["fields"])
        for d in drop:
            form.pop(d, None)
        form.update(override(w, x, form) if override else {})
        files = {"file": ("f.txt", b"form-bytes", file_ct)} if file_ct else {"file": ("f.txt", b"form-bytes")}
        r = requests.post(f"{w.server.http}/{w.POSTB}", data=form, files=files)
        return Resp(r.status_code, None if r.status_code < 300 else _code(r.content), r.content)
    return go


def _code(body):
    from attack_lib import code_of
    return code_of(400, body)


def uniq(w):
    return {"u": uuid.uuid4().hex[:8]}


def post_absent(*keys):
    return lambda w, x: [("absent", w.POSTB, k.format(u=x["u"])) for k in keys]


ON_POSTB = lambda w, x: [w.POSTB]  # noqa: E731  (the form's key: from the row's watch)


def post_stored(key):
    def check(w, x, r):
        got = w.s3.get_object(Bucket=w.POSTB, Key=key.format(u=x["u"]))["Body"].read()
        assert got == b"form-bytes", got
    return check


row("c4-post-protected-key-denied-by-identity-deny", _post("poster", "protected/{u}"), DENIED, setup=uniq,
    watch=post_absent("protected/{u}"), on=ON_POSTB)
row("c4-post-protected-deep-key-denied", _post("poster", "protected/a/b/{u}"), DENIED, setup=uniq,
    watch=post_absent("protected/a/b/{u}"), on=ON_POSTB)
row("c4-post-open-key-allowed-object-arn-only", _post("poster", "open/{u}"), OK204, setup=uniq,
    check=post_stored("open/{u}"))
row("c4-post-key-field-is-literal-%2F-not-a-slash", _post("poster", "protected%2F{u}"), OK204, setup=uniq,
    check=lambda w, x, r: (post_stored("protected%2F{u}")(w, x, r),
                           w.state(("absent", w.POSTB, f"protected/{x['u']}")) == ([], []) or pytest.fail("decoded")))
row("c4-post-key-case-differs-allowed", _post("poster", "Protected/{u}"), OK204, setup=uniq,
    check=post_stored("Protected/{u}"))
row("c4-post-dotdot-key-is-literal-allowed", _post("poster", "open/../protected/{u}"), OK204, setup=uniq,
    check=lambda w, x, r: (post_stored("open/../protected/{u}")(w, x, r),
                           w.state(("absent", w.POSTB, f"protected/{x['u']}")) == ([], []) or pytest.fail("resolved")))
row("c4-post-bucket-arn-only-user-denied", _post("posterb", "open/{u}"), DENIED, setup=uniq,
    watch=post_absent("open/{u}"), on=ON_POSTB)
row("c4-post-key-outside-starts-with-condition-denied",
    _post("poster", "open/{u}", conditions=[["starts-with", "$key", "open/"]],
          override=lambda w, x, f: {"key": f"elsewhere/{x['u']}"}), DENIED, setup=uniq,
    watch=post_absent("elsewhere/{u}", "open/{u}"), on=ON_POSTB)
row("c4-post-key-swapped-to-protected-after-signing-denied",
    _post("poster", "open/{u}", conditions=[["starts-with", "$key", ""]],
          override=lambda w, x, f: {"key": f"protected/{x['u']}"}), DENIED, setup=uniq,
    watch=post_absent("protected/{u}"), on=ON_POSTB)
row("c4-post-content-type-condition-broken-denied",
    _post("poster", "open/{u}", fields={"Content-Type": "text/plain"},
          conditions=[{"Content-Type": "text/plain"}],
          override=lambda w, x, f: {"Content-Type": "image/png"}), DENIED, setup=uniq, watch=post_absent("open/{u}"),
    on=ON_POSTB)
row("c4-post-expired-policy-denied", _post("poster", "open/{u}", expires=-60), DENIED, setup=uniq,
    watch=post_absent("open/{u}"), on=ON_POSTB)
row("c4-post-extra-meta-field-not-in-policy-denied",
    _post("poster", "open/{u}", override=lambda w, x, f: {"x-amz-meta-evil": "1"}), DENIED, setup=uniq,
    watch=post_absent("open/{u}"), on=ON_POSTB)  # AWS: "Invalid according to Policy: Extra input fields"
row("c4-post-policy-tampered-signature-mismatch",
    _post("poster", "open/{u}", override=lambda w, x, f: {"policy": base64.b64encode(
        base64.b64decode(f["policy"]).replace(b"open/", b"protected/")).decode(), "key": f"protected/{x['u']}"}),
    SDNM, setup=uniq, watch=post_absent("protected/{u}", "open/{u}"), on=ON_POSTB)
row("c4-post-other-account-root-denied", _post("alt", "open/{u}"), DENIED, setup=uniq, watch=post_absent("open/{u}"),
    on=ON_POSTB)
row("c4-post-anonymous-denied", _post("anon", "open/{u}"), DENIED, setup=uniq, watch=post_absent("open/{u}"),
    on=ON_POSTB)


# ======================================================================
# c5: aws-chunked integrity
# ======================================================================

CHUNK_DATA = bytes(range(256)) * 600  # 153600 bytes: 3 chunks of 64 KiB (2 full + 1 partial) + final


def _chunked(frames_of, decoded_delta=0, key=None):
    def go(w, x):
        k = x.get("key", key)
        target = f"/{w.CB}/{k}"
        date = amz_now()
        extra = {"content-encoding": "aws-chunked",
                 "x-amz-decoded-content-length": str(len(CHUNK_DATA) + decoded_delta)}
        hs, seed, skey, scope = sigv4.sign("PUT", w.server.http + target, MAIN, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                                           extra, amz_date=date)
        hs.pop("host")
        frames = chunk_frames(CHUNK_DATA, 65536, seed, skey, scope, date)
        body = b"".join(frames_of(frames))
        return send(w.server, "PUT", target, dict(hs, **{"content-length": str(len(body))}), body)
    return go


NEW_CB = lambda w: w.new_key("ch")  # noqa: E731
CB_ABSENT = lambda w, x: [("absent", w.CB, x["key"])]  # noqa: E731
ON_CB = lambda w, x: [(w.CB, "existing")]  # noqa: E731
INCOMPLETE = (400, "IncompleteBody")
row("c5-chunked-final-zero-chunk-missing-refused", _chunked(lambda f: f[:-1]), INCOMPLETE, setup=NEW_CB,
    watch=CB_ABSENT, on=ON_CB)
row("c5-chunked-final-zero-chunk-missing-over-existing-refused", _chunked(lambda f: f[:-1], key="existing"),
    INCOMPLETE, watch=lambda w, x: [("obj", w.CB, "existing")], on=ON_CB)
row("c5-chunked-decoded-length-larger-than-data-refused", _chunked(lambda f: f, decoded_delta=10), INCOMPLETE,
    setup=NEW_CB, watch=CB_ABSENT, on=ON_CB)
row("c5-chunked-decoded-length-smaller-than-data-refused", _chunked(lambda f: f, decoded_delta=-10),
    INCOMPLETE, setup=NEW_CB, watch=CB_ABSENT, on=ON_CB)  # AWS code uncertain
row("c5-chunked-replay-first-chunk-only-refused", _chunked(lambda f: f[:1]), INCOMPLETE, setup=NEW_CB,
    watch=CB_ABSENT, on=ON_CB)
row("c5-chunked-replay-first-chunk-with-captured-final-refused", _chunked(lambda f: [f[0], f[-1]]), SDNM,
    setup=NEW_CB, watch=CB_ABSENT, on=ON_CB)
row("c5-chunked-middle-chunk-dropped-refused", _chunked(lambda f: [f[0], f[2], f[3]]), SDNM, setup=NEW_CB,
    watch=CB_ABSENT, on=ON_CB)
row("c5-chunked-chunks-reordered-refused", _chunked(lambda f: [f[1], f[0], f[2], f[3]]), SDNM, setup=NEW_CB,
    watch=CB_ABSENT, on=ON_CB)
row("c5-chunked-chunk-duplicated-refused", _chunked(lambda f: [f[0], f[0], f[1], f[2], f[3]]), SDNM, setup=NEW_CB,
    watch=CB_ABSENT, on=ON_CB)
row("c5-chunked-complete-upload-works", _chunked(lambda f: f), OK, setup=NEW_CB,
    check=lambda w, x, r: w.s3.get_object(Bucket=w.CB, Key=x["key"])["Body"].read() == CHUNK_DATA
    or pytest.fail("bytes differ"))


# ======================================================================
# c6: cross-account and anonymous callers on a bucket without a policy
# ======================================================================

def _xops(w, x, c):
    b = w.XB
    return {
        "GetObject": lambda: c.get_object(Bucket=b, Key="x"),
        "HeadObject": lambda: c.head_object(Bucket=b, Key="x"),
        "PutObject": lambda: c.put_object(Bucket=b, Key=x["key"], Body=b"intruder"),
        "DeleteObject": lambda: c.delete_object(Bucket=b, Key="x"),
        "DeleteObjectVersion": lambda: c.delete_object(Bucket=b, Key="x", VersionId=w.xv),
        "ListObjectsV2": lambda: c.list_objects_v2(Bucket=b),
        "ListObjects": lambda: c.list_objects(Bucket=b),
        "GetBucketPolicy": lambda: c.get_bucket_policy(Bucket=b),
        "PutBucketPolicy": lambda: c.put_bucket_policy(Bucket=b, Policy=json.dumps(doc(stmt(
            "Allow", "s3:*", [arn(b), arn(b, "*")], principal={"AWS": f"arn:aws:iam::{ALT_ID}:root"})))),
        "PutBucketVersioning": lambda: c.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"}),
        "PutObjectTagging": lambda: c.put_object_tagging(Bucket=b, Key="x", Tagging={"TagSet": [{"Key": "e", "Value": "1"}]}),
        "GetObjectTagging": lambda: c.get_object_tagging(Bucket=b, Key="x"),
        "GetObjectAcl": lambda: c.get_object_acl(Bucket=b, Key="x"),
        "ListObjectVersions": lambda: c.list_object_versions(Bucket=b),
        "ListMultipartUploads": lambda: c.list_multipart_uploads(Bucket=b),
        "CreateMultipartUpload": lambda: c.create_multipart_upload(Bucket=b, Key=x["key"]),
        "DeleteBucket": lambda: c.delete_bucket(Bucket=b),
        "PutBucketTagging": lambda: c.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "e", "Value": "1"}]}),
        "DeletePublicAccessBlock": lambda: c.delete_public_access_block(Bucket=b),
        "CopyObject-into-victim": lambda: c.copy_object(Bucket=b, Key=x["key"], CopySource={"Bucket": b, "Key": "x"}),
    }


XOPS = ["GetObject", "HeadObject", "PutObject", "DeleteObject", "DeleteObjectVersion", "ListObjectsV2", "ListObjects",
        "GetBucketPolicy", "PutBucketPolicy", "PutBucketVersioning", "PutObjectTagging", "GetObjectTagging",
        "GetObjectAcl", "ListObjectVersions", "ListMultipartUploads", "CreateMultipartUpload", "DeleteBucket",
        "PutBucketTagging", "DeletePublicAccessBlock", "CopyObject-into-victim"]
XWATCH = lambda w, x: [("obj", w.XB, "x"), ("absent", w.XB, x["key"]), ("policy", w.XB),  # noqa: E731
                       ("versioning", w.XB), ("uploads", w.XB), ("btags", w.XB)]
ON_XB = lambda w, x: [w.XB]  # noqa: E731  (its keys: from XWATCH)


def _xsetup(w):
    if not hasattr(w, "xv"):
        w.xv = w.versions(w.XB, "x")[0][0][0]
    return w.new_key("xa")


def _xsend(who, op):
    return lambda w, x: sdk(_xops(w, x, w.c[who])[op])


for who, label in (("alt", "other-account-root"), ("altuser", "other-account-user"), ("anon", "anonymous")):
    for op in XOPS:
        if who == "altuser" and op not in ("GetObject", "PutObject", "DeleteObject", "ListObjectsV2",
                                           "PutBucketPolicy", "PutObjectTagging", "ListObjectVersions"):
            continue
        row(f"c6-{op}-{label}-denied", _xsend(who, op), HEAD403 if op == "HeadObject" else DENIED,
            setup=_xsetup, watch=XWATCH, on=ON_XB)
    # AWS code uncertain: DeleteObjects is decided per key (200 with per-key
    # AccessDenied); AWS may also refuse the whole request with 403
    row(f"c6-DeleteObjects-{label}-per-key-denied",
        lambda w, x, who=who: sdk(lambda: w.c[who].delete_objects(Bucket=w.XB, Delete={"Objects": [{"Key": "x"}]})),
        OK, also=(DENIED,), deny=True, setup=_xsetup, watch=XWATCH, on=ON_XB,
        check=lambda w, x, r: (r.data.get("Deleted") in (None, []) and
                               [e["Code"] for e in r.data.get("Errors", [])] == ["AccessDenied"])
        or pytest.fail(str(r.data)))
NSB = (404, "NoSuchBucket")
ON_NOBUCKET = lambda w, x: [(w.NOBUCKET, "x")]  # noqa: E731  (read by the main account: it must still not exist)
row("c6-GetObject-anonymous-missing-bucket-NoSuchBucket",
    lambda w, x: sdk(lambda: w.c["anon"].get_object(Bucket=w.NOBUCKET, Key="x")), NSB, on=ON_NOBUCKET)
row("c6-ListObjectsV2-anonymous-missing-bucket-NoSuchBucket",
    lambda w, x: sdk(lambda: w.c["anon"].list_objects_v2(Bucket=w.NOBUCKET)), NSB, on=ON_NOBUCKET)
row("c6-PutObject-anonymous-missing-bucket-NoSuchBucket",
    lambda w, x: sdk(lambda: w.c["anon"].put_object(Bucket=w.NOBUCKET, Key="x", Body=b"x")), NSB, on=ON_NOBUCKET)
row("c6-GetObject-other-account-missing-bucket-NoSuchBucket",
    lambda w, x: sdk(lambda: w.c["alt"].get_object(Bucket=w.NOBUCKET, Key="x")), NSB, on=ON_NOBUCKET)
row("c6-raw-GET-anonymous-encoded-key-denied",
    lambda w, x: send(w.server, "GET", f"/{w.XB}/%78"), DENIED, watch=lambda w, x: [("obj", w.XB, "x")], on=ON_XB)
row("c6-raw-GET-anonymous-version%49d-denied",
    lambda w, x: send(w.server, "GET", f"/{w.VB}/doc?version%49d={w.v1}"), DENIED,
    watch=lambda w, x: [("obj", w.VB, "doc")], on=ON_VB)
row("c6-GetObject-owner-root-allowed-control", lambda w, x: sdk(lambda: w.s3.get_object(Bucket=w.XB, Key="x")), OK)


def _mixed(who, objs, quiet=False):
    def go(w, x):
        body = delete_xml([(k.format(**x), v(w, x) if callable(v) else v) for k, v in objs], quiet=quiet)
        return w.raw(who, "POST", f"/{w.XB}?delete", body=body, headers={"content-md5": md5_b64(body)})
    return go


def _mixed_setup(w):
    u = uuid.uuid4().hex[:8]
    vs = {}
    for k in (f"mine/{u}", f"theirs/{u}"):
        vs[k] = w.s3.put_object(Bucket=w.XB, Key=k, Body=b"keep")["VersionId"]
    return {"u": u, "mine_v": vs[f"mine/{u}"]}


def _delete_result(body):
    import xml.etree.ElementTree as ET
    root = ET.fromstring(body)
    q = "{%s}" % NS
    deleted = sorted(d.findtext(q + "Key") or d.findtext("Key") for d in root.iter() if d.tag.endswith("Deleted"))
    errors = sorted((e.findtext(q + "Key") or e.findtext("Key"), e.findtext(q + "Code") or e.findtext("Code"))
                    for e in root.iter() if e.tag.endswith("Error"))
    return deleted, errors


def _untouched(*keys):
    """on= for a DeleteObjects that is allowed for some keys: only the keys it
    refuses must be unchanged (every version and delete marker, bytes, tags),
    so the bucket as a whole is not snapshotted."""
    return lambda w, x: [lambda: [w.state(("obj", w.XB, k.format(**x))) for k in keys]]


def _mixed_check(deleted, errored):
    def check(w, x, r):
        got_del, errs = _delete_result(r.body)
        assert got_del == sorted(d.format(**x) for d in deleted), r.body
        assert errs == sorted((e.format(**x), "AccessDenied") for e in errored), r.body
        for e in errored:
            assert w.versions(w.XB, e.format(**x))[0], f"{e} was deleted"
    return check


row("c6-DeleteObjects-mixed-allowed-and-denied-keys", _mixed("delmix", [("mine/{u}", None), ("theirs/{u}", None)]),
    OK, deny=True, on=_untouched("theirs/{u}"), setup=_mixed_setup, check=_mixed_check(["mine/{u}"], ["theirs/{u}"]))
row("c6-DeleteObjects-mixed-quiet-still-reports-denied", _mixed("delmix", [("theirs/{u}", None), ("mine/{u}", None)],
                                                                quiet=True),
    OK, deny=True, on=_untouched("theirs/{u}"), setup=_mixed_setup, check=_mixed_check([], ["theirs/{u}"]))
row("c6-DeleteObjects-xml-char-ref-slash-still-denied",
    _mixed("delmix", [("theirs&#x2F;{u}", None), ("mine/{u}", None)]), OK, deny=True, on=_untouched("theirs/{u}"),
    setup=_mixed_setup, check=_mixed_check(["mine/{u}"], ["theirs/{u}"]))
# every key of this one is refused: the whole bucket stays as it was
row("c6-DeleteObjects-version-needs-DeleteObjectVersion",
    _mixed("delmix", [("mine/{u}", lambda w, x: x["mine_v"])]), OK, deny=True,
    on=lambda w, x: [(w.XB, f"mine/{x['u']}", f"theirs/{x['u']}")], setup=_mixed_setup,
    check=_mixed_check([], ["mine/{u}"]))


# ======================================================================
# c7: prefix-scoped policy (alice may Get/Put home/alice/*) with odd keys
# ======================================================================

def _home(method, path_key, body=b"alice-wrote", encode=False):
    def go(w, x):
        k = path_key.format(**x)
        k = quote(k, safe="/") if encode else k
        return w.raw("alice", method, f"/{w.HOME}/{k}", body=body if method == "PUT" else b"")
    return go


def hsetup(w):
    return {"u": uuid.uuid4().hex[:8]}


def home_stored(literal):
    def check(w, x, r):
        got = w.s3.get_object(Bucket=w.HOME, Key=literal.format(**x))["Body"].read()
        assert got == b"alice-wrote", got
    return check


HOME_BOB = lambda w, x: [("obj", w.HOME, "home/bob/x")]  # noqa: E731
ON_HOME = lambda w, x: [(w.HOME, "home/bob/x", "home/alice/x")]  # noqa: E731  (and the row's own key, from its watch)
row("c7-PUT-dotdot-key-is-literal-and-under-alice-allowed", _home("PUT", "home/alice/../bob/{u}"), OK, setup=hsetup,
    check=lambda w, x, r: (home_stored("home/alice/../bob/{u}")(w, x, r),
                           w.state(("absent", w.HOME, f"home/bob/{x['u']}")) == ([], []) or pytest.fail("resolved")))
row("c7-PUT-encoded-slash-dotdot-key-allowed-literal", _home("PUT", "home/alice%2F..%2Fbob/{u}"), OK, setup=hsetup,
    check=home_stored("home/alice/../bob/{u}"))
row("c7-PUT-encoded-dots-key-allowed-literal", _home("PUT", "home/alice/%2E%2E/%2e%2e/bob/{u}"), OK, setup=hsetup,
    check=home_stored("home/alice/../../bob/{u}"))
row("c7-PUT-other-home-denied", _home("PUT", "home/bob/x"), DENIED, watch=HOME_BOB, on=ON_HOME)
row("c7-PUT-other-home-new-key-denied", _home("PUT", "home/bob/{u}"), DENIED, setup=hsetup,
    watch=lambda w, x: [("absent", w.HOME, f"home/bob/{x['u']}")], on=ON_HOME)
row("c7-PUT-percent-encoded-letter-in-path-allowed", _home("PUT", "home/alic%65/{u}"), OK, setup=hsetup,
    check=home_stored("home/alice/{u}"))
row("c7-PUT-encoded-slash-in-prefix-allowed", _home("PUT", "home%2Falice%2F{u}"), OK, setup=hsetup,
    check=home_stored("home/alice/{u}"))
row("c7-PUT-unicode-a-ring-denied", _home("PUT", "home/ålice/{u}", encode=True), DENIED, setup=hsetup,
    watch=lambda w, x: [("absent", w.HOME, f"home/ålice/{x['u']}")], on=ON_HOME)
row("c7-PUT-unicode-key-under-alice-allowed", _home("PUT", "home/alice/ü-{u}.txt", encode=True), OK, setup=hsetup,
    check=home_stored("home/alice/ü-{u}.txt"))
row("c7-PUT-capital-A-denied", _home("PUT", "home/Alice/{u}"), DENIED, setup=hsetup,
    watch=lambda w, x: [("absent", w.HOME, f"home/Alice/{x['u']}")], on=ON_HOME)
row("c7-PUT-prefix-without-slash-denied", _home("PUT", "home/alice{u}"), DENIED, setup=hsetup,
    watch=lambda w, x: [("absent", w.HOME, f"home/alice{x['u']}")], on=ON_HOME)
row("c7-PUT-double-slash-denied", _home("PUT", "home//alice/{u}"), DENIED, setup=hsetup,
    watch=lambda w, x: [("absent", w.HOME, f"home//alice/{x['u']}")], on=ON_HOME)
row("c7-PUT-leading-dot-segment-denied", _home("PUT", "./home/alice/{u}"), DENIED, setup=hsetup,
    watch=lambda w, x: [("absent", w.HOME, f"./home/alice/{x['u']}"), ("absent", w.HOME, f"home/alice/{x['u']}")],
    on=ON_HOME)
row("c7-GET-other-home-denied", _home("GET", "home/bob/x"), DENIED, on=ON_HOME)
# no such key, and no s3:ListBucket: 403
row("c7-GET-dotdot-does-not-reach-bob", _home("GET", "home/alice/../bob/x"), DENIED,
    on=lambda w, x: [(w.HOME, "home/bob/x", "home/alice/../bob/x")])
row("c7-GET-encoded-letter-allowed", _home("GET", "home/alic%65/x"), OK,
    check=lambda w, x, r: r.body == b"alice" or pytest.fail(r.body))
row("c7-GET-unicode-key-allowed", _home("GET", "home/alice/ü.txt", encode=True), OK,
    check=lambda w, x, r: r.body == b"umlaut" or pytest.fail(r.body))
row("c7-GET-encoded-slash-bob-denied", _home("GET", "home%2Fbob%2Fx"), DENIED, on=ON_HOME)
row("c7-DELETE-own-home-needs-DeleteObject", _home("DELETE", "home/alice/x"), DENIED,
    watch=lambda w, x: [("obj", w.HOME, "home/alice/x")], on=ON_HOME)


# ======================================================================
# c8: session policies (intersection with the role's permissions)
# ======================================================================

def _sess(who, op, key, skip_fed=False):
    def go(w, x):
        c = w.c[who]
        k = key.format(**x)
        if op == "get":
            return sdk(lambda: c.get_object(Bucket=w.SESS, Key=k))
        if op == "put":
            return sdk(lambda: c.put_object(Bucket=w.SESS, Key=k, Body=b"session-wrote"))
        return sdk(lambda: c.delete_object(Bucket=w.SESS, Key=k))
    return go


def fed_setup(w):
    if w.fed_skip:
        pytest.skip(w.fed_skip)
    return w.new_key("pub/fed")


SKEY = lambda w: w.new_key("pub/s")  # noqa: E731
SABS = lambda w, x: [("absent", w.SESS, x["key"])]  # noqa: E731
ON_SESS = lambda w, x: [(w.SESS, "pub/x", "priv/x")]  # noqa: E731
row("c8-role-session-without-policy-PutObject-allowed-control", _sess("sess_full", "put", "{key}"), OK, setup=SKEY)
row("c8-inline-session-policy-GetObject-in-prefix-allowed", _sess("sess_inline", "get", "pub/x"), OK)
row("c8-inline-session-policy-GetObject-outside-prefix-denied", _sess("sess_inline", "get", "priv/x"), DENIED,
    on=ON_SESS)
row("c8-inline-session-policy-PutObject-denied-though-role-allows", _sess("sess_inline", "put", "{key}"), DENIED,
    setup=SKEY, watch=SABS, on=ON_SESS)
row("c8-inline-session-policy-PutObject-over-existing-denied", _sess("sess_inline", "put", "pub/x"), DENIED,
    watch=lambda w, x: [("obj", w.SESS, "pub/x")], on=ON_SESS)
row("c8-PolicyArns-session-GetObject-allowed", _sess("sess_arns", "get", "priv/x"), OK)
row("c8-PolicyArns-session-PutObject-denied-though-role-allows", _sess("sess_arns", "put", "{key}"), DENIED,
    setup=SKEY, watch=SABS, on=ON_SESS)
row("c8-wide-session-policy-does-not-add-DeleteObject", _sess("sess_wide", "delete", "pub/x"), DENIED,
    watch=lambda w, x: [("obj", w.SESS, "pub/x")], on=ON_SESS)
row("c8-wide-session-policy-does-not-reach-other-bucket",
    lambda w, x: sdk(lambda: w.c["sess_wide"].get_object(Bucket=w.VB, Key="doc")), DENIED, on=ON_VB_DOC)
row("c8-session-policy-deny-wins", _sess("sess_deny", "get", "priv/x"), DENIED, on=ON_SESS)
row("c8-session-policy-deny-other-key-allowed", _sess("sess_deny", "get", "pub/x"), OK)
row("c8-session-policy-on-bucket-the-role-lacks-denied",
    lambda w, x: sdk(lambda: w.c["sess_other"].get_object(Bucket=w.VB, Key="doc")), DENIED, on=ON_VB_DOC)
row("c8-session-policy-raw-PUT-denied", lambda w, x: w.raw("sess_inline", "PUT", f"/{w.SESS}/{x['key']}", body=b"x"),
    DENIED, setup=SKEY, watch=SABS, on=ON_SESS)
row("c8-federation-token-policy-GetObject-allowed",
    lambda w, x: sdk(lambda: w.c["fed"].get_object(Bucket=w.SESS, Key="pub/x")), OK, setup=fed_setup)
row("c8-federation-token-policy-PutObject-denied",
    lambda w, x: sdk(lambda: w.c["fed"].put_object(Bucket=w.SESS, Key=x["key"], Body=b"x")), DENIED,
    setup=fed_setup, watch=SABS, on=ON_SESS)


# ======================================================================
# c9: IAM / STS / KMS without permission (a user with s3:* only)
# ======================================================================

def _iam(fn, who="s3only"):
    return lambda w, x: sdk(lambda: fn(w, w.svc("iam", w.creds[who]), x))


KMS_DENIED = (400, "AccessDeniedException")  # KMS answers its errors with HTTP 400


def _kms(fn, who="s3only"):
    return lambda w, x: sdk(lambda: fn(w, w.svc("kms", w.creds[who]), x))


ESC = json.dumps(doc(stmt("Allow", "*", "*")))
IAM_ROWS = [
    ("CreateUser", lambda w, i, x: i.create_user(UserName=f"atk-evil-{w.u}"), lambda w, x: [("users",)]),
    ("PutUserPolicy-on-itself", lambda w, i, x: i.put_user_policy(UserName=w.names["s3only"], PolicyName="esc",
                                                                  PolicyDocument=ESC),
     lambda w, x: [("upol", "s3only")]),
    ("PutUserPolicy-on-other", lambda w, i, x: i.put_user_policy(UserName=w.names["nover"], PolicyName="esc",
                                                                 PolicyDocument=ESC),
     lambda w, x: [("upol", "nover")]),
    ("DeleteUserPolicy-on-other", lambda w, i, x: i.delete_user_policy(UserName=w.names["nover"], PolicyName="p"),
     lambda w, x: [("upol", "nover")]),
    ("AttachUserPolicy-admin-on-itself", lambda w, i, x: i.attach_user_policy(UserName=w.names["s3only"],
                                                                              PolicyArn=w.admin_arn),
     lambda w, x: [("attached", "s3only")]),
    ("CreateAccessKey-for-other-user", lambda w, i, x: i.create_access_key(UserName=w.names["nover"]),
     lambda w, x: [("keys", "nover")]),
    ("CreateAccessKey-for-itself", lambda w, i, x: i.create_access_key(UserName=w.names["s3only"]),
     lambda w, x: [("keys", "s3only")]),
    ("UpdateAccessKey-deactivate-other", lambda w, i, x: i.update_access_key(
        UserName=w.names["nover"], AccessKeyId=w.creds["nover"][0], Status="Inactive"),
     lambda w, x: [("keys", "nover")]),
    ("DeleteUser-other", lambda w, i, x: i.delete_user(UserName=w.names["listpub"]), lambda w, x: [("users",)]),
    ("UpdateAssumeRolePolicy", lambda w, i, x: i.update_assume_role_policy(
        RoleName=w.role, PolicyDocument=json.dumps(doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
            "AWS": f"arn:aws:iam::{MAIN_ID}:user/{w.names['s3only']}"}}))), lambda w, x: [("trust",)]),
    ("PutRolePolicy", lambda w, i, x: i.put_role_policy(RoleName=w.role, PolicyName="esc", PolicyDocument=ESC),
     lambda w, x: [("rolepol",)]),
    ("AttachRolePolicy", lambda w, i, x: i.attach_role_policy(RoleName=w.role, PolicyArn=w.admin_arn),
     lambda w, x: [("rolepol",)]),
    ("CreateRole", lambda w, i, x: i.create_role(RoleName=f"atk-evil-{w.u}", AssumeRolePolicyDocument=json.dumps(
        doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{MAIN_ID}:root"}}))),
     lambda w, x: [("roles",)]),
    ("CreatePolicy", lambda w, i, x: i.create_policy(PolicyName=f"atk-evil-{w.u}", PolicyDocument=ESC),
     lambda w, x: [("mpolicies",), ("mpolicy", f"atk-evil-{w.u}")]),
    ("CreateGroup", lambda w, i, x: i.create_group(GroupName=f"atk-evil-{w.u}"), lambda w, x: [("groups",)]),
    ("ListUsers", lambda w, i, x: i.list_users(), None),
    ("GetUserPolicy-of-other", lambda w, i, x: i.get_user_policy(UserName=w.names["nover"], PolicyName="p"), None),
]
def _served_by_root(label):
    """Skips an IAM row whose action the server does not serve even to the
    account root (InvalidAction): that is a missing feature, not a bypass."""
    probes = {"UpdateAssumeRolePolicy": lambda w: w.iam.update_assume_role_policy(
        RoleName=w.role, PolicyDocument=json.dumps(w.iam.get_role(RoleName=w.role)["Role"]["AssumeRolePolicyDocument"]))}
    if label not in probes:
        return None

    def setup(w):
        try:
            probes[label](w)
        except ClientError as e:
            if e.response["Error"].get("Code") == "InvalidAction":
                pytest.skip(f"iam:{label} is not served (InvalidAction even for the root)")
        return {}
    return setup


# the account's IAM state (users, roles, groups, policies) and, for the users and the role these rows name, their
# inline and attached policies, trust policy and access keys
ON_IAM = lambda w, x: [w.iam_reader("s3only", "nover", "listpub")]  # noqa: E731
for label, fn, watch in IAM_ROWS:
    row(f"c9-iam-{label}-denied-to-s3-only-user", _iam(fn), DENIED, watch=watch, setup=_served_by_root(label),
        on=ON_IAM)
row("c9-iam-PutUserPolicy-by-other-account-root-denied",
    _iam(lambda w, i, x: i.put_user_policy(UserName=w.names["nover"], PolicyName="esc", PolicyDocument=ESC), "alt"),
    (404, "NoSuchEntity"), also=(DENIED,), watch=lambda w, x: [("upol", "nover")],  # AWS: names resolve in the caller's
    # account; both accounts' IAM state must be unchanged
    on=lambda w, x: [w.iam_reader("nover"), w.iam_reader("altuser", acct="alt")])
row("c9-iam-CreateUser-by-role-session-denied", _iam(lambda w, i, x: i.create_user(UserName=f"atk-evil2-{w.u}"),
                                                      "sess_wide"), DENIED, watch=lambda w, x: [("users",)], on=ON_IAM)
row("c9-iam-CreateUser-by-root-allowed-control",
    _iam(lambda w, i, x: i.create_user(UserName=x["key"]), "main"), OK, setup=lambda w: w.new_key("atk-ok"),
    check=lambda w, x, r: x["key"] in w.st_users() or pytest.fail("not created"))
row("c9-sts-AssumeRole-not-trusted-denied",
    lambda w, x: sdk(lambda: w.svc("sts", w.creds["s3only"]).assume_role(
        RoleArn=f"arn:aws:iam::{MAIN_ID}:role/{w.role}", RoleSessionName="intruder")), DENIED,
    on=lambda w, x: [w.iam_reader("s3only")])  # the role it names (trust, policies) and the caller
row("c9-sts-AssumeRole-by-other-account-denied",
    lambda w, x: sdk(lambda: w.svc("sts", ALT).assume_role(
        RoleArn=f"arn:aws:iam::{MAIN_ID}:role/{w.role}", RoleSessionName="intruder")), DENIED,
    on=lambda w, x: [w.iam_reader(), w.iam_reader(acct="alt")])

KMS_ROWS = [
    ("CreateKey-by-s3-only-user", "s3only", lambda w, k, x: k.create_key(), lambda w, x: [("kmskeys",)]),
    ("Encrypt-by-s3-only-user", "s3only", lambda w, k, x: k.encrypt(KeyId=w.mkey, Plaintext=b"x"), None),
    ("Decrypt-by-s3-only-user", "s3only", lambda w, k, x: k.decrypt(CiphertextBlob=w.mct), None),
    ("PutKeyPolicy-by-s3-only-user", "s3only", lambda w, k, x: k.put_key_policy(
        KeyId=w.mkey, PolicyName="default", Policy=json.dumps(doc(
            stmt("Allow", "kms:*", "*", principal={"AWS": f"arn:aws:iam::{ALT_ID}:root"})))),
     lambda w, x: [("kpolicy", w.mkey)]),
    ("ScheduleKeyDeletion-by-s3-only-user", "s3only",
     lambda w, k, x: k.schedule_key_deletion(KeyId=w.mkey, PendingWindowInDays=7), lambda w, x: [("kstate", w.mkey)]),
    ("DisableKey-by-s3-only-user", "s3only", lambda w, k, x: k.disable_key(KeyId=w.mkey),
     lambda w, x: [("kstate", w.mkey)]),
    ("Encrypt-with-other-accounts-key", "main", lambda w, k, x: k.encrypt(KeyId=w.akey, Plaintext=b"x"), None),
    ("Decrypt-other-accounts-ciphertext", "main", lambda w, k, x: k.decrypt(CiphertextBlob=w.act), None),
    ("PutKeyPolicy-on-other-accounts-key", "main", lambda w, k, x: k.put_key_policy(
        KeyId=w.akey, PolicyName="default", Policy=json.dumps(doc(
            stmt("Allow", "kms:*", "*", principal={"AWS": f"arn:aws:iam::{MAIN_ID}:root"})))),
     lambda w, x: [("kpolicy", w.akey)]),
    ("ScheduleKeyDeletion-other-accounts-key", "main",
     lambda w, k, x: k.schedule_key_deletion(KeyId=w.akey, PendingWindowInDays=7), lambda w, x: [("kstate", w.akey)]),
    ("Decrypt-by-other-account-root", "alt", lambda w, k, x: k.decrypt(CiphertextBlob=w.mct), None),
    ("GenerateDataKey-by-role-session", "sess_wide",
     lambda w, k, x: k.generate_data_key(KeyId=w.mkey, KeySpec="AES_256"), None),
]
for label, who, fn, watch in KMS_ROWS:
    # both accounts' key lists and both keys' state and policy (every row names one of the two keys)
    row(f"c9-kms-{label}-denied", _kms(fn, who), KMS_DENIED, watch=watch, on=lambda w, x: [w.kms_reader()])
row("c9-kms-Encrypt-by-key-owner-root-allowed-control",
    _kms(lambda w, k, x: k.encrypt(KeyId=w.mkey, Plaintext=b"x"), "main"), OK)


# ======================================================================
# c10: Block Public Access defaults on new buckets (AWS since April 2023)
# ======================================================================

ALL_ON = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


def new_bucket(acct="main"):
    def setup(w):
        name = f"atk-pab-{uuid.uuid4().hex[:12]}"
        w.bucket(name, client=w.s3 if acct == "main" else w.alt_s3)
        return {"b": name}
    return setup


ON_NEW = lambda w, x: [(x["b"], "k")]  # noqa: E731  (the row's own new bucket)


def with_object(setup):
    def go(w):
        x = setup(w)
        w.owner[x["b"]].put_object(Bucket=x["b"], Key="k", Body=b"x")
        return x
    return go


def public_policy(b, principal="*"):
    return json.dumps(doc(stmt("Allow", "s3:GetObject", arn(b, "*"), principal=principal)))


row("c10-new-bucket-has-all-four-block-public-access-settings",
    lambda w, x: sdk(lambda: w.s3.get_public_access_block(Bucket=x["b"])), OK, setup=new_bucket(),
    check=lambda w, x, r: r.data["PublicAccessBlockConfiguration"] == ALL_ON or pytest.fail(str(r.data)))
row("c10-new-bucket-of-other-account-has-block-public-access",
    lambda w, x: sdk(lambda: w.alt_s3.get_public_access_block(Bucket=x["b"])), OK, setup=new_bucket("alt"),
    check=lambda w, x, r: r.data["PublicAccessBlockConfiguration"] == ALL_ON or pytest.fail(str(r.data)))
row("c10-public-policy-star-refused-on-new-bucket",
    lambda w, x: sdk(lambda: w.s3.put_bucket_policy(Bucket=x["b"], Policy=public_policy(x["b"]))), DENIED,
    setup=new_bucket(), watch=lambda w, x: [("policy", x["b"])], on=ON_NEW)
row("c10-public-policy-aws-star-refused-on-new-bucket",
    lambda w, x: sdk(lambda: w.s3.put_bucket_policy(Bucket=x["b"], Policy=public_policy(x["b"], {"AWS": "*"}))),
    DENIED, setup=new_bucket(), watch=lambda w, x: [("policy", x["b"])], on=ON_NEW)
row("c10-public-policy-refused-on-new-bucket-of-other-account",
    lambda w, x: sdk(lambda: w.alt_s3.put_bucket_policy(Bucket=x["b"], Policy=public_policy(x["b"]))), DENIED,
    setup=new_bucket("alt"), watch=lambda w, x: [("policy", x["b"])], on=ON_NEW)
row("c10-non-public-policy-accepted-on-new-bucket",
    lambda w, x: sdk(lambda: w.s3.put_bucket_policy(Bucket=x["b"], Policy=public_policy(
        x["b"], {"AWS": f"arn:aws:iam::{ALT_ID}:root"}))), OK204, setup=new_bucket())


def _after_pab_deleted(w, x):
    w.s3.delete_public_access_block(Bucket=x["b"])
    return sdk(lambda: w.s3.put_bucket_policy(Bucket=x["b"], Policy=public_policy(x["b"])))


row("c10-public-policy-accepted-after-owner-deletes-block", _after_pab_deleted, OK204, setup=new_bucket(),
    check=lambda w, x, r: w.s3.get_bucket_policy_status(Bucket=x["b"])["PolicyStatus"]["IsPublic"] is True
    or pytest.fail("not public"))
row("c10-anonymous-read-of-new-bucket-denied",
    lambda w, x: sdk(lambda: w.c["anon"].get_object(Bucket=x["b"], Key="k")), DENIED, setup=with_object(new_bucket()),
    on=ON_NEW)


# ======================================================================
# c11: bucket re-creation between requests. A bucket deleted and created
# again under its name by another account is another bucket: what was
# granted, signed or started on the old one does not reach the new one.
# (The commit-time check, a random incarnation id per bucket record, is
# what holds when the re-creation lands between a request's decision and
# its commit; these rows pin the between-requests cases.)
# (c12, damaged stored records, needs a stopped server: test_damaged_records.py.)
# ======================================================================

def reborn(w, grant_alt=False):
    """MAIN creates a bucket (optionally granting ALT s3:* by policy), signs URLs on it, deletes it; ALT
    creates the same name and stores its own object."""
    b = f"atk-reborn-{uuid.uuid4().hex[:12]}"
    w.bucket(b)
    if grant_alt:
        w.s3.put_bucket_policy(Bucket=b, Policy=json.dumps(doc(stmt(
            "Allow", "s3:*", [arn(b), arn(b, "*")], principal={"AWS": f"arn:aws:iam::{ALT_ID}:root"}))))
    x = {"b": b,
         "put_url": presign_v4(w.server, "PUT", f"/{b}/planted", MAIN),
         "get_url": presign_v4(w.server, "GET", f"/{b}/alt-secret", MAIN),
         "del_url": presign_v4(w.server, "DELETE", f"/{b}/alt-secret", MAIN)}
    w.s3.delete_bucket_policy(Bucket=b) if grant_alt else None
    w.s3.delete_bucket(Bucket=b)
    w.bucket(b, client=w.alt_s3)
    w.alt_s3.put_object(Bucket=b, Key="alt-secret", Body=b"alt's own data")
    return x


ON_REBORN = lambda w, x: [(x["b"], "alt-secret", "planted")]  # noqa: E731  (as its new owner, ALT, sees it)
row("c11-old-owners-presigned-PUT-into-recreated-bucket-denied",
    lambda w, x: send(w.server, "PUT", x["put_url"], body=b"planted"), DENIED,
    setup=reborn, watch=lambda w, x: [("absent", x["b"], "planted")], on=ON_REBORN)
row("c11-old-owners-presigned-GET-from-recreated-bucket-denied",
    lambda w, x: send(w.server, "GET", x["get_url"]), DENIED, on=ON_REBORN,
    setup=reborn, check=lambda w, x, r: b"alt's own" not in r.body or pytest.fail("data leaked"))
row("c11-old-owners-presigned-DELETE-in-recreated-bucket-denied",
    lambda w, x: send(w.server, "DELETE", x["del_url"]), DENIED,
    setup=reborn, watch=lambda w, x: [("obj", x["b"], "alt-secret")], on=ON_REBORN)
row("c11-old-owner-sdk-PUT-into-recreated-bucket-denied",
    lambda w, x: sdk(lambda: w.s3.put_object(Bucket=x["b"], Key="planted", Body=b"x")), DENIED,
    setup=reborn, watch=lambda w, x: [("absent", x["b"], "planted")], on=ON_REBORN)
row("c11-old-policy-grant-does-not-survive-recreation",
    lambda w, x: sdk(lambda: w.alt_s3.get_bucket_policy(Bucket=x["b"])), (404, "NoSuchBucketPolicy"),
    setup=lambda w: reborn(w, grant_alt=True), on=ON_REBORN)
row("c11-old-owner-cannot-put-policy-on-recreated-bucket",
    lambda w, x: sdk(lambda: w.s3.put_bucket_policy(Bucket=x["b"], Policy=public_policy(
        x["b"], {"AWS": f"arn:aws:iam::{MAIN_ID}:root"}))), DENIED,
    setup=reborn, watch=lambda w, x: [("policy", x["b"])], on=ON_REBORN)
row("c11-new-owner-reads-its-object-control",
    lambda w, x: sdk(lambda: w.alt_s3.get_object(Bucket=x["b"], Key="alt-secret")), OK, setup=reborn)


# ---------------------------------------------------------------- the test

KEYED = ("obj", "absent", "retention", "legal", "parts")  # specs (kind, bucket, key, ...)


def readers_of(w, x, r, specs):
    """The readers denied() snapshots for a refusing row: bucket_state of every
    bucket the row addresses (`on`) or watches, reading the keys it names and
    the keys its specs name, any IAM/KMS reader it names, and its own specs
    (finer: every version's bytes and tags, the parts of an upload, ...)."""
    buckets, readers = {}, []
    for item in r.on(w, x):
        if callable(item):
            readers.append(item)
        else:
            b, *keys = (item,) if isinstance(item, str) else item
            buckets.setdefault(b, []).extend(keys)
    for s in specs:
        if s[0] in KEYED:
            buckets.setdefault(s[1], []).append(s[2])
    readers += [w.bucket_reader(b, *dict.fromkeys(keys)) for b, keys in buckets.items()]
    readers += [lambda s=s: w.state(s) for s in specs]
    return readers


@pytest.mark.parametrize("r", ROWS, ids=[r.id for r in ROWS])
def test_attack(world, r):
    if r.skip:
        pytest.skip(r.skip)
    w = world
    x = r.setup(w) if r.setup else {}
    if r.refuses:
        specs = r.watch(w, x) if r.watch else []
        sent = []

        def call():
            sent.append(r.send(w, x))
            return sent[0].status, sent[0].code

        try:
            denied(call, watch=readers_of(w, x, r, specs), want=r.want, also=r.also)
        except AssertionError as e:
            raise AssertionError(f"{e}\nanswer: {sent[0] if sent else None!r}") from None
        resp = sent[0]
        for s in specs:
            if s[0] == "absent":
                a = w.state(s)
                assert a == ([], []), f"{s}: an object exists: {a}"
    else:
        resp = r.send(w, x)
        got = (resp.status, resp.code)
        assert got == r.want or got in r.also, f"got {got}, expected {r.want}: {resp.body[:400]!r}"
    if r.check and ((resp.status, resp.code) == r.want or resp.status < 300):
        r.check(w, x, resp)


def test_the_table_is_big_enough():
    assert len(ROWS) >= 200, len(ROWS)

"""The one way an end-to-end test asserts a refusal: `denied(...)`.

A 403 proves nothing by itself: a server that answered 403 *after* writing
the object, deleting the version or replacing the policy would pass a test
that only reads the status. `denied` snapshots the state the request could
touch, sends it, checks the refusal (status and AWS error code), and checks
that the snapshot is unchanged. Every denied-request test in tests/e2e goes
through it (issue 16: grep shows no 403 assertion outside this module).

    denied(lambda: alice.put_object(Bucket=b, Key="k", Body=b"x"),
           watch=bucket_state(owner, b, "k"))

`call` may be a boto3 call (a ClientError is the refusal), a requests /
http.client / raw-socket call returning something with a status, or anything
returning `(status, code)`. `watch` is a zero-argument callable whose result
must compare equal before and after (the readers below, or a list of them);
it is required: a denial test names what must not change.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Optional

from botocore.exceptions import ClientError

ACCESS_DENIED = (403, "AccessDenied")

# bucket sub-resources read by bucket_state: (label, client method, result key)
_CONFIGS = [
    ("policy", "get_bucket_policy", "Policy"),
    ("versioning", "get_bucket_versioning", None),
    ("encryption", "get_bucket_encryption", "ServerSideEncryptionConfiguration"),
    ("lifecycle", "get_bucket_lifecycle_configuration", "Rules"),
    ("cors", "get_bucket_cors", "CORSRules"),
    ("website", "get_bucket_website", None),
    ("tagging", "get_bucket_tagging", "TagSet"),
    ("pab", "get_public_access_block", "PublicAccessBlockConfiguration"),
    ("ownership", "get_bucket_ownership_controls", "OwnershipControls"),
    ("lock", "get_object_lock_configuration", "ObjectLockConfiguration"),
    ("logging", "get_bucket_logging", "LoggingEnabled"),
    ("acl", "get_bucket_acl", "Grants"),
]


def _strip(d):
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if k != "ResponseMetadata"}
    if isinstance(d, list):
        return [_strip(v) for v in d]
    return d


def _read(fn, key=None):
    """The value of one owner read, or the error code it answered: a
    configuration that did not exist and still does not is unchanged."""
    try:
        out = _strip(fn())
    except ClientError as e:
        return ("error", e.response["Error"].get("Code", ""))
    return out.get(key) if key else out


def _object(client, bucket, key, version=None):
    v = {"VersionId": version} if version else {}
    head = _read(lambda: client.head_object(Bucket=bucket, Key=key, **v))
    if isinstance(head, dict):
        # what a write could change; dates and request ids are not state
        head = {k: head.get(k) for k in ("ETag", "ContentLength", "ContentType", "Metadata",
                                          "ServerSideEncryption", "SSEKMSKeyId", "VersionId",
                                          "ObjectLockMode", "ObjectLockRetainUntilDate",
                                          "ObjectLockLegalHoldStatus", "CacheControl",
                                          "ContentDisposition", "WebsiteRedirectLocation")}
        # the bytes, not only the ETag (an ETag is the client's claim for multipart)
        body = _read(lambda: client.get_object(Bucket=bucket, Key=key, **v)["Body"].read())
        head["sha256"] = hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else body
        head["tags"] = _read(lambda: client.get_object_tagging(Bucket=bucket, Key=key, **v), "TagSet")
    return head


def bucket_state(client, bucket: str, *keys: str, objects: bool = True, configs: bool = True,
                 max_objects: int = 50) -> Callable[[], dict]:
    """A reader of everything in `bucket` a request could change, as its
    owner (`client`) sees it: every version and delete marker, the open
    multipart uploads, the named keys' bytes, metadata and tags (and those of
    up to `max_objects` current objects), and every bucket configuration."""

    def read():
        state: dict = {}
        if objects:
            vs = _read(lambda: client.list_object_versions(Bucket=bucket))
            if isinstance(vs, dict):
                state["versions"] = sorted(
                    (v["Key"], v.get("VersionId"), v.get("ETag"), v.get("Size"), v.get("IsLatest"))
                    for v in vs.get("Versions", []))
                state["markers"] = sorted(
                    (m["Key"], m.get("VersionId"), m.get("IsLatest")) for m in vs.get("DeleteMarkers", []))
                current = sorted({v[0] for v in state["versions"] if v[4]})
            else:
                state["versions"] = vs
                current = []
            ups = _read(lambda: client.list_multipart_uploads(Bucket=bucket))
            state["uploads"] = sorted((u["Key"], u["UploadId"]) for u in ups.get("Uploads", [])) \
                if isinstance(ups, dict) else ups
            for k in dict.fromkeys([*keys, *current[:max_objects]]):
                state[f"object:{k}"] = _object(client, bucket, k)
        if configs:
            for label, method, key in _CONFIGS:
                state[label] = _read(lambda m=method: getattr(client, m)(Bucket=bucket), key)
        return state

    return read


def object_state(client, bucket: str, key: str, version: Optional[str] = None) -> Callable[[], dict]:
    """A reader of one object (or one version of it): bytes, metadata, tags,
    retention and legal hold, as the owner sees them."""

    def read():
        v = {"VersionId": version} if version else {}
        out = {"object": _object(client, bucket, key, version)}
        out["retention"] = _read(lambda: client.get_object_retention(Bucket=bucket, Key=key, **v), "Retention")
        out["hold"] = _read(lambda: client.get_object_legal_hold(Bucket=bucket, Key=key, **v), "LegalHold")
        return out

    return read


def _names(fn, key, *fields):
    """Sorted field tuples of a list read, or the error it answered."""
    items = _read(fn, key)
    if not isinstance(items, list):
        return items
    return sorted(tuple(i.get(f) for f in fields) for i in items)


def iam_state(iam, *users: str, roles: Iterable[str] = ()) -> Callable[[], dict]:
    """A reader of the account's IAM state: users, roles, groups and managed
    policies, and for the named users and roles their inline policies (with
    documents), attached policies and access keys."""

    def inline(list_fn, get_fn):
        names = _read(list_fn, "PolicyNames")
        if not isinstance(names, list):
            return names
        return {n: _read(lambda n=n: get_fn(n), "PolicyDocument") for n in names}

    def read():
        out = {
            "users": _names(iam.list_users, "Users", "UserName", "UserId"),
            "roles": _names(iam.list_roles, "Roles", "RoleName", "RoleId"),
            "groups": _names(iam.list_groups, "Groups", "GroupName"),
            "policies": _names(lambda: iam.list_policies(Scope="Local"), "Policies", "PolicyName",
                               "DefaultVersionId"),
        }
        for u in users:
            out[f"user:{u}"] = (
                inline(lambda: iam.list_user_policies(UserName=u),
                       lambda n: iam.get_user_policy(UserName=u, PolicyName=n)),
                _names(lambda: iam.list_attached_user_policies(UserName=u), "AttachedPolicies", "PolicyArn"),
                _names(lambda: iam.list_access_keys(UserName=u), "AccessKeyMetadata", "AccessKeyId", "Status"),
            )
        for r in roles:
            out[f"role:{r}"] = (
                _read(lambda: iam.get_role(RoleName=r), "Role"),
                inline(lambda: iam.list_role_policies(RoleName=r),
                       lambda n: iam.get_role_policy(RoleName=r, PolicyName=n)),
                _names(lambda: iam.list_attached_role_policies(RoleName=r), "AttachedPolicies", "PolicyArn"),
            )
        return out

    return read


def status_of(result) -> tuple:
    """(status, code) of what `call` returned or raised."""
    if isinstance(result, ClientError):
        r = result.response
        st = r["ResponseMetadata"]["HTTPStatusCode"]
        code = r["Error"].get("Code", "")
        return st, ("" if code == str(st) else code)  # HEAD: botocore puts the status as the code
    if isinstance(result, tuple) and len(result) == 2:
        return result
    st = getattr(result, "status_code", None) or getattr(result, "status", None)
    body = getattr(result, "content", None)
    if body is None:
        body = getattr(result, "body", b"") or b""
    if isinstance(body, str):
        body = body.encode()
    code = ""
    if b"<Code>" in body:
        code = body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode()
    return st, code


def denied(call: Callable, *, watch, want=ACCESS_DENIED, also: Iterable[tuple] = ()):
    """Sends `call`, asserts it was refused with `want` (status, AWS code;
    code "" for a bodiless answer, None to accept any code) or one of
    `also`, and that every reader in `watch` reads the same before and after.
    Returns what the call returned or raised, for further checks."""
    readers = watch if isinstance(watch, (list, tuple)) else [watch]
    assert readers and all(callable(r) for r in readers), "denied() needs the state that must not change"
    before = [r() for r in readers]
    try:
        result = call()
    except ClientError as e:
        result = e
    got = status_of(result)
    ok = [want, *also]
    assert any(got[0] == st and (code is None or got[1] == code) for st, code in ok), \
        f"expected a refusal {ok}, got {got}"
    after = [r() for r in readers]
    for b, a in zip(before, after):
        assert b == a, f"a refused request changed state:\nbefore: {b}\nafter:  {a}"
    return result


def nothing() -> Callable[[], None]:
    """For a refusal that reaches no state at all (a malformed signature
    before any bucket is named): says so explicitly."""
    return lambda: None

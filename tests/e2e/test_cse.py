"""Client-side encryption (`strongroom cse`, crates/cse): the object format
is the contract with AWS's own S3 Encryption Clients, so interoperability
is the test. AWS's clients are real and installed by scripts/test.sh:
amazon-s3-encryption-client-python 4.x (V3 with key commitment, KMS
keyring; writes V2 under FORBID_ENCRYPT_ALLOW_DECRYPT) and Debian's
ruby-aws-sdk-s3 Aws::S3::EncryptionV2::Client (V2: kms+context and AES/GCM
key wrapping). Both directions, metadata and instruction files, small and
multipart objects; then what the server sees (ciphertext only), and the
tampering table: each refused with a clear error and no plaintext out."""
import base64
import json
import os
import shutil
import subprocess

import boto3
import pytest
from botocore.config import Config

from conftest import MAIN, Server, binary

pytest.importorskip("s3_encryption", reason="amazon-s3-encryption-client-python is installed by scripts/test.sh")
from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig  # noqa: E402
from s3_encryption.materials import AlgorithmSuite, CommitmentPolicy, KmsKeyring  # noqa: E402

MARKER = b"CSE-PLAINTEXT-MARKER-7f3a9c"


class World:
    def __init__(self, server):
        self.server = server
        self.creds = dict(region_name="us-east-1", aws_access_key_id=MAIN[0], aws_secret_access_key=MAIN[1])
        self.s3 = self.plain_s3()
        creds = self.creds
        self.kms = boto3.client("kms", endpoint_url=server.http, **creds)
        self.key = self.kms.create_key()["KeyMetadata"]["Arn"]
        self.other_key = self.kms.create_key()["KeyMetadata"]["Arn"]
        self.s3.create_bucket(Bucket="cse")

    def env(self, **extra):
        e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        e.update({"AWS_ACCESS_KEY_ID": MAIN[0], "AWS_SECRET_ACCESS_KEY": MAIN[1], "AWS_REGION": "us-east-1",
                  "AWS_ENDPOINT_URL": self.server.http})
        e.update(extra)
        return e

    def cse(self, *args, env=None, check=True):
        r = subprocess.run([binary(), "cse", *args], capture_output=True, env=env or self.env(), timeout=300)
        if check:
            assert r.returncode == 0, r.stderr.decode()
        return r

    def plain_s3(self):
        return boto3.client("s3", endpoint_url=self.server.http, config=Config(s3={"addressing_style": "path"}),
                            **self.creds)

    def py(self, policy=None, algorithm=None, key=None):
        """AWS's client; it hooks the boto3 client it wraps, so each gets its own."""
        cfg = {"keyring": KmsKeyring(kms_client=self.kms, kms_key_id=key or self.key)}
        if policy:
            cfg["commitment_policy"] = policy
        if algorithm:
            cfg["encryption_algorithm"] = algorithm
        return S3EncryptionClient(self.plain_s3(), S3EncryptionClientConfig(**cfg))

    def raw(self, key):
        return self.s3.get_object(Bucket="cse", Key=key)["Body"].read()


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    s = Server(str(tmp_path_factory.mktemp("cse") / "data")).start()
    yield World(s)
    s.stop()


def plaintext(n):
    """n bytes with the marker every 91 bytes."""
    unit = MARKER + os.urandom(64)
    return (unit * (n // len(unit) + 1))[:n]


# --- AWS's Python client (V3, key commitment) --------------------------------

def test_python_v3_objects_decrypt_with_ours(w, tmp_path):
    small = plaintext(1000)
    w.py().put_object(Bucket="cse", Key="py/small", Body=small, EncryptionContext={"team": "blue"})
    meta = w.s3.head_object(Bucket="cse", Key="py/small")["Metadata"]
    assert meta["x-amz-c"] == "115" and meta["x-amz-w"] == "12", meta
    w.cse("get", "s3://cse/py/small", str(tmp_path / "small"), "--kms-key-id", w.key,
          "--encryption-context", "team=blue")
    assert (tmp_path / "small").read_bytes() == small
    # multipart: one GCM stream across the parts, the tag on the last
    big = plaintext(17 * 1024 * 1024 + 5)
    (tmp_path / "big-in").write_bytes(big)
    w.py().upload_file(str(tmp_path / "big-in"), "cse", "py/big", multipart_threshold=8 * 1024 * 1024,
                       multipart_chunksize=8 * 1024 * 1024)
    assert w.s3.head_object(Bucket="cse", Key="py/big")["ETag"].endswith('-3"')
    w.cse("get", "s3://cse/py/big", str(tmp_path / "big"), "--kms-key-id", w.key)
    assert (tmp_path / "big").read_bytes() == big


def test_ours_decrypt_with_python_metadata_instruction_file_and_multipart(w, tmp_path):
    small = plaintext(3000)
    (tmp_path / "small").write_bytes(small)
    w.cse("put", str(tmp_path / "small"), "s3://cse/rs/small", "--kms-key-id", w.key, "--encryption-context",
          "team=red,env=test")
    got = w.py().get_object(Bucket="cse", Key="rs/small", EncryptionContext={"team": "red", "env": "test"})
    assert got["Body"].read() == small
    # the envelope in an instruction file: x-amz-c/d/i stay with the object
    w.cse("put", str(tmp_path / "small"), "s3://cse/rs/ins", "--kms-key-id", w.key, "--instruction-file")
    meta = w.s3.head_object(Bucket="cse", Key="rs/ins")["Metadata"]
    assert sorted(meta) == ["x-amz-c", "x-amz-d", "x-amz-i"], meta
    ins = json.loads(w.raw("rs/ins.instruction"))
    assert sorted(ins) == ["x-amz-3", "x-amz-t", "x-amz-w"], ins
    assert w.py().get_object(Bucket="cse", Key="rs/ins")["Body"].read() == small
    # multipart, parts of whole AES blocks
    big = plaintext(21 * 1024 * 1024 + 3)
    (tmp_path / "big").write_bytes(big)
    w.cse("put", str(tmp_path / "big"), "s3://cse/rs/big", "--kms-key-id", w.key)
    assert w.s3.head_object(Bucket="cse", Key="rs/big")["ETag"].endswith('-3"')
    assert w.py().get_object(Bucket="cse", Key="rs/big")["Body"].read() == big


def test_v2_format_both_ways_with_python_as_the_policy_allows(w, tmp_path):
    data = plaintext(777)
    v2_writer = w.py(policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
                     algorithm=AlgorithmSuite.ALG_AES_256_GCM_IV12_TAG16_NO_KDF)
    v2_writer.put_object(Bucket="cse", Key="py/v2", Body=data)
    assert w.s3.head_object(Bucket="cse", Key="py/v2")["Metadata"]["x-amz-cek-alg"] == "AES/GCM/NoPadding"
    # the default policy (REQUIRE_ENCRYPT_REQUIRE_DECRYPT) refuses V2, before KMS
    r = w.cse("get", "s3://cse/py/v2", str(tmp_path / "v2"), "--kms-key-id", w.key, check=False)
    assert r.returncode != 0 and b"commitment policy" in r.stderr, r.stderr
    assert not (tmp_path / "v2").exists()
    w.cse("get", "s3://cse/py/v2", str(tmp_path / "v2"), "--kms-key-id", w.key,
          "--commitment-policy", "require-encrypt-allow-decrypt")
    assert (tmp_path / "v2").read_bytes() == data
    # ours, V2, read by Python under REQUIRE_ENCRYPT_ALLOW_DECRYPT
    (tmp_path / "in").write_bytes(data)
    w.cse("put", str(tmp_path / "in"), "s3://cse/rs/v2", "--kms-key-id", w.key,
          "--commitment-policy", "forbid-encrypt-allow-decrypt")
    meta = w.s3.head_object(Bucket="cse", Key="rs/v2")["Metadata"]
    assert meta["x-amz-wrap-alg"] == "kms+context" and meta["x-amz-tag-len"] == "128", meta
    reader = w.py(policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    assert reader.get_object(Bucket="cse", Key="rs/v2")["Body"].read() == data


# --- Debian's Ruby SDK, EncryptionV2 (V2: kms+context and AES/GCM) -----------

RUBY = r"""
require 'aws-sdk-s3'
require 'aws-sdk-kms'
creds = Aws::Credentials.new(ENV['AK'], ENV['SK'])
s3 = Aws::S3::Client.new(endpoint: ENV['EP'], region: 'us-east-1', credentials: creds, force_path_style: true)
# Debian's ruby-aws-sdk-kms (1.24) predates Decrypt's KeyId, which its
# ruby-aws-sdk-s3 (1.117) EncryptionV2 sends: without this, Ruby cannot
# decrypt any KMS-wrapped object, its own included
kms = Aws::KMS::Client.new(endpoint: ENV['EP'], region: 'us-east-1', credentials: creds, validate_params: false)
opts = {client: s3, content_encryption_schema: :aes_gcm_no_padding, security_profile: :v2}
if ENV['WRAP'] == 'kms'
  opts.update(kms_key_id: ENV['KEY'], kms_client: kms, key_wrap_schema: :kms_context)
elsif ENV['WRAP'] == 'rsa'
  opts.update(encryption_key: OpenSSL::PKey::RSA.new(File.read(ENV['RSAFILE'])), key_wrap_schema: :rsa_oaep_sha1)
else
  opts.update(encryption_key: File.binread(ENV['AESFILE']), key_wrap_schema: :aes_gcm)
end
opts[:envelope_location] = :instruction_file if ENV['INS'] == '1'
enc = Aws::S3::EncryptionV2::Client.new(**opts)
ctx = ENV['WRAP'] == 'kms' ? {kms_encryption_context: {'team' => 'ruby'}} : {}
if ENV['OP'] == 'put'
  enc.put_object(bucket: 'cse', key: ENV['OBJ'], body: File.binread(ENV['FILE']), **ctx)
else
  File.binwrite(ENV['FILE'], enc.get_object(bucket: 'cse', key: ENV['OBJ'], **ctx).body.read)
end
"""


def rsa_pem(bits=2048):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def ruby(w, **env):
    e = w.env(AK=MAIN[0], SK=MAIN[1], EP=w.server.http, KEY=w.key, **env)
    r = subprocess.run(["ruby", "-e", RUBY], env=e, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()


ruby_sdk = pytest.mark.skipif(
    shutil.which("ruby") is None or subprocess.run(["ruby", "-e", "require 'aws-sdk-s3'"],
                                                   capture_output=True).returncode != 0,
    reason="ruby-aws-sdk-s3 is installed by scripts/test.sh")


@ruby_sdk
@pytest.mark.parametrize("wrap,ins", [("kms", "0"), ("aes", "0"), ("rsa", "0"), ("kms", "1")])
def test_ruby_v2_client_both_ways(w, tmp_path, wrap, ins):
    aes = tmp_path / "aes.key"
    aes.write_bytes(os.urandom(32))
    rsa = tmp_path / "rsa.pem"
    rsa.write_bytes(rsa_pem())
    keys = {"kms": ["--kms-key-id", w.key, "--encryption-context", "team=ruby"],
            "aes": ["--aes-key-file", str(aes)],
            "rsa": ["--rsa-key-file", str(rsa)]}[wrap]
    data = plaintext(5000)
    src = tmp_path / "src"
    src.write_bytes(data)
    # Ruby writes, we read
    ruby(w, WRAP=wrap, OP="put", OBJ=f"rb/{wrap}{ins}", FILE=str(src), AESFILE=str(aes), RSAFILE=str(rsa), INS=ins)
    w.cse("get", f"s3://cse/rb/{wrap}{ins}", str(tmp_path / "a"), *keys,
          "--commitment-policy", "require-encrypt-allow-decrypt")
    assert (tmp_path / "a").read_bytes() == data
    # we write V2, Ruby reads
    args = ["put", str(src), f"s3://cse/rs/rb{wrap}{ins}", *keys, "--commitment-policy",
            "forbid-encrypt-allow-decrypt"]
    if ins == "1":
        args.append("--instruction-file")
    w.cse(*args)
    ruby(w, WRAP=wrap, OP="get", OBJ=f"rs/rb{wrap}{ins}", FILE=str(tmp_path / "b"), AESFILE=str(aes),
         RSAFILE=str(rsa), INS=ins)
    assert (tmp_path / "b").read_bytes() == data


# --- what the server sees ----------------------------------------------------

def test_the_server_never_sees_plaintext(w, tmp_path):
    data = plaintext(2 * 1024 * 1024)
    (tmp_path / "p").write_bytes(data)
    w.cse("put", str(tmp_path / "p"), "s3://cse/secret/meta", "--kms-key-id", w.key)
    w.cse("put", str(tmp_path / "p"), "s3://cse/secret/ins", "--kms-key-id", w.key, "--instruction-file")
    w.cse("put", str(tmp_path / "p"), "s3://cse/secret/big", "--kms-key-id", w.key, "--multipart-threshold",
          str(1024 * 1024), "--part-size", str(5 * 1024 * 1024))
    for k in ("secret/meta", "secret/ins", "secret/big"):
        stored = w.raw(k)
        assert MARKER not in stored
        assert len(stored) == len(data) + 16, "ciphertext and its 16-byte tag"
    w.server.log.flush()
    for root, _, files in os.walk(w.server.data_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert MARKER not in fh.read(), f
    assert MARKER not in w.server.log_bytes()


# --- tampering: each refused, clearly, with no plaintext out -----------------

def put_raw(w, key, body, meta):
    w.s3.put_object(Bucket="cse", Key=key, Body=body, Metadata=meta)


def refused(w, tmp_path, key, *keys, expect):
    out = tmp_path / "out"
    r = w.cse("get", f"s3://cse/{key}", str(out), *keys, check=False)
    assert r.returncode != 0, "refused"
    assert expect.encode() in r.stderr, r.stderr.decode()
    assert not out.exists(), "no partial plaintext on disk"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cse-")], "no temporary file left"
    r = w.cse("get", f"s3://cse/{key}", "-", *keys, check=False)
    assert r.returncode != 0 and r.stdout == b"", "nothing on stdout"
    return r.stderr.decode()


@pytest.fixture
def sealed(w, tmp_path):
    data = plaintext(4096)
    (tmp_path / "in").write_bytes(data)
    name = f"t/{os.urandom(4).hex()}"
    w.cse("put", str(tmp_path / "in"), f"s3://cse/{name}", "--kms-key-id", w.key, "--encryption-context", "team=x")
    return name, w.raw(name), w.s3.head_object(Bucket="cse", Key=name)["Metadata"]



def test_tamper_flipped_ciphertext_byte(w, tmp_path, sealed):
    name, body, meta = sealed
    bad = bytearray(body)
    bad[100] ^= 1
    put_raw(w, name, bytes(bad), meta)
    refused(w, tmp_path, name, "--kms-key-id", w.key, "--encryption-context", "team=x",
            expect="does not authenticate")


def test_tamper_truncated_by_one_byte(w, tmp_path, sealed):
    name, body, meta = sealed
    put_raw(w, name, body[:-1], meta)
    refused(w, tmp_path, name, "--kms-key-id", w.key, "--encryption-context", "team=x",
            expect="does not authenticate")


def test_tamper_commitment_altered(w, tmp_path, sealed):
    name, body, meta = sealed
    d = bytearray(base64.b64decode(meta["x-amz-d"]))
    d[0] ^= 1
    put_raw(w, name, body, {**meta, "x-amz-d": base64.b64encode(bytes(d)).decode()})
    refused(w, tmp_path, name, "--kms-key-id", w.key, "--encryption-context", "team=x", expect="key commitment")


def test_tamper_changed_encryption_context(w, tmp_path, sealed):
    name, body, meta = sealed
    ctx = json.loads(meta["x-amz-t"])
    ctx["team"] = "y"
    put_raw(w, name, body, {**meta, "x-amz-t": json.dumps(ctx)})
    # asked with the original context: the stored one differs
    refused(w, tmp_path, name, "--kms-key-id", w.key, "--encryption-context", "team=x",
            expect="encryption context")
    # asked with the forged one: KMS refuses, the context is bound to the key
    refused(w, tmp_path, name, "--kms-key-id", w.key, "--encryption-context", "team=y",
            expect="InvalidCiphertextException")


def test_tamper_wrong_kms_key(w, tmp_path, sealed):
    name, _, _ = sealed
    refused(w, tmp_path, name, "--kms-key-id", w.other_key, "--encryption-context", "team=x",
            expect="IncorrectKeyException")


def test_tamper_swapped_data_keys_between_instruction_files(w, tmp_path):
    """Key substitution: B's wrapped data key put in A's instruction file.
    KMS unwraps it (it is a genuine key) but A's commitment, kept with the
    object, does not match it."""
    (tmp_path / "a").write_bytes(plaintext(1000))
    (tmp_path / "b").write_bytes(plaintext(1000))
    w.cse("put", str(tmp_path / "a"), "s3://cse/swap/a", "--kms-key-id", w.key, "--instruction-file")
    w.cse("put", str(tmp_path / "b"), "s3://cse/swap/b", "--kms-key-id", w.key, "--instruction-file")
    w.s3.put_object(Bucket="cse", Key="swap/a.instruction", Body=w.raw("swap/b.instruction"))
    refused(w, tmp_path, "swap/a", "--kms-key-id", w.key, expect="key commitment")
    # and a forged instruction file that brings its own commitment is refused outright
    forged = json.loads(w.raw("swap/b.instruction"))
    forged["x-amz-d"] = w.s3.head_object(Bucket="cse", Key="swap/b")["Metadata"]["x-amz-d"]
    w.s3.put_object(Bucket="cse", Key="swap/a.instruction", Body=json.dumps(forged).encode())
    refused(w, tmp_path, "swap/a", "--kms-key-id", w.key, expect="tampered")


def test_tamper_wrong_aes_key(w, tmp_path):
    k1, k2 = tmp_path / "k1", tmp_path / "k2"
    k1.write_bytes(os.urandom(32))
    k2.write_text(base64.b64encode(os.urandom(32)).decode())
    (tmp_path / "in").write_bytes(plaintext(100))
    w.cse("put", str(tmp_path / "in"), "s3://cse/aes/one", "--aes-key-file", str(k1))
    refused(w, tmp_path, "aes/one", "--aes-key-file", str(k2), expect="wrong key")
    # a KMS reader of an AES-wrapped object is told so
    refused(w, tmp_path, "aes/one", "--kms-key-id", w.key, expect="not KMS")


def test_rsa_key_pairs_v3_and_the_public_key_only_encrypts(w, tmp_path):
    from cryptography.hazmat.primitives import serialization
    pem = rsa_pem()
    (tmp_path / "priv.pem").write_bytes(pem)
    private = serialization.load_pem_private_key(pem, None)
    (tmp_path / "pub.pem").write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    data = plaintext(10_000)
    (tmp_path / "in").write_bytes(data)
    w.cse("put", str(tmp_path / "in"), "s3://cse/rsa/o", "--rsa-key-file", str(tmp_path / "pub.pem"))
    assert w.s3.head_object(Bucket="cse", Key="rsa/o")["Metadata"]["x-amz-w"] == "22"
    r = w.cse("get", "s3://cse/rsa/o", str(tmp_path / "x"), "--rsa-key-file", str(tmp_path / "pub.pem"), check=False)
    assert r.returncode != 0 and b"private key" in r.stderr
    w.cse("get", "s3://cse/rsa/o", str(tmp_path / "out"), "--rsa-key-file", str(tmp_path / "priv.pem"))
    assert (tmp_path / "out").read_bytes() == data
    (tmp_path / "out").unlink()
    (tmp_path / "other.pem").write_bytes(rsa_pem())
    refused(w, tmp_path, "rsa/o", "--rsa-key-file", str(tmp_path / "other.pem"), expect="wrong key")
    (tmp_path / "small.pem").write_bytes(rsa_pem(1024))
    r = w.cse("put", str(tmp_path / "in"), "s3://cse/rsa/small", "--rsa-key-file", str(tmp_path / "small.pem"),
              check=False)
    assert r.returncode != 0 and b"2048" in r.stderr


# --- ranges, ls, cp, settings --------------------------------------------------

def test_ranged_read_is_opt_in_and_exact(w, tmp_path):
    data = plaintext(100_000)
    (tmp_path / "in").write_bytes(data)
    w.cse("put", str(tmp_path / "in"), "s3://cse/range/o", "--kms-key-id", w.key)
    r = w.cse("get", "s3://cse/range/o", str(tmp_path / "r"), "--kms-key-id", w.key, "--range", "bytes=5-20",
              check=False)
    assert r.returncode != 0 and b"--allow-unauthenticated-range" in r.stderr
    for first, last in [(0, 0), (5, 20), (15, 16), (4095, 70_001), (99_990, None)]:
        spec = f"bytes={first}-{'' if last is None else last}"
        w.cse("get", "s3://cse/range/o", str(tmp_path / "r"), "--kms-key-id", w.key, "--range", spec,
              "--allow-unauthenticated-range")
        want = data[first:] if last is None else data[first:last + 1]
        assert (tmp_path / "r").read_bytes() == want, spec


def test_ls_shows_how_each_object_is_encrypted(w, tmp_path):
    (tmp_path / "in").write_bytes(b"x" * 10)
    w.cse("put", str(tmp_path / "in"), "s3://cse/ls/v3", "--kms-key-id", w.key)
    w.cse("put", str(tmp_path / "in"), "s3://cse/ls/v2ins", "--kms-key-id", w.key, "--instruction-file",
          "--commitment-policy", "forbid-encrypt-allow-decrypt")
    w.s3.put_object(Bucket="cse", Key="ls/plain", Body=b"p")
    out = w.cse("ls", "s3://cse/ls/").stdout.decode()
    lines = {line.split()[1]: line for line in out.splitlines()}
    assert set(lines) == {"ls/v3", "ls/v2ins", "ls/plain"}, out
    assert "V3" in lines["ls/v3"] and "kms+context" in lines["ls/v3"]
    assert "V2" in lines["ls/v2ins"] and "instruction file" in lines["ls/v2ins"]
    assert lines["ls/plain"].rstrip().endswith("-")


def test_cp_both_ways_and_s3_to_s3_reencrypts(w, tmp_path):
    data = plaintext(9000)
    (tmp_path / "in").write_bytes(data)
    w.cse("cp", str(tmp_path / "in"), "s3://cse/cp/a", "--kms-key-id", w.key)
    w.cse("cp", "s3://cse/cp/a", "s3://cse/cp/b", "--kms-key-id", w.key)
    a = w.s3.head_object(Bucket="cse", Key="cp/a")["Metadata"]
    b = w.s3.head_object(Bucket="cse", Key="cp/b")["Metadata"]
    assert a["x-amz-3"] != b["x-amz-3"], "a fresh data key"
    w.cse("cp", "s3://cse/cp/b", str(tmp_path / "out"), "--kms-key-id", w.key)
    assert (tmp_path / "out").read_bytes() == data


def test_profiles_and_https_as_the_aws_cli_reads_them(w, tmp_path):
    (tmp_path / "credentials").write_text(f"[dev]\naws_access_key_id = {MAIN[0]}\naws_secret_access_key = {MAIN[1]}\n")
    (tmp_path / "config").write_text(f"[profile dev]\nregion = us-east-1\nendpoint_url = {w.server.https}\n"
                                     f"ca_bundle = {w.server.ca}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")})
    data = plaintext(300)
    (tmp_path / "in").write_bytes(data)
    w.cse("put", str(tmp_path / "in"), "s3://cse/prof/o", "--kms-key-id", w.key, "--profile", "dev", env=env)
    w.cse("get", "s3://cse/prof/o", str(tmp_path / "out"), "--kms-key-id", w.key, "--profile", "dev", env=env)
    assert (tmp_path / "out").read_bytes() == data
    r = w.cse("get", "s3://cse/prof/o", str(tmp_path / "x"), "--kms-key-id", w.key, "--profile", "nobody", env=env,
              check=False)
    assert r.returncode != 0 and b"no credentials" in r.stderr


# --- the client's own attack surface -------------------------------------------

def test_the_s3_endpoint_never_chooses_the_data_keys(w, tmp_path):
    """An S3 server must not be the KMS: --endpoint-url is S3's only. With
    KMS named elsewhere (here a closed port), the upload fails at KMS
    instead of asking the S3 server for a data key; KMS over plain HTTP
    is refused off loopback."""
    (tmp_path / "in").write_bytes(b"x" * 10)
    env = {k: v for k, v in w.env().items() if k != "AWS_ENDPOINT_URL"}
    env["AWS_ENDPOINT_URL_KMS"] = "http://127.0.0.1:1"
    r = w.cse("put", str(tmp_path / "in"), "s3://cse/ep/o", "--endpoint-url", w.server.http, "--kms-key-id", w.key,
              env=env, check=False)
    assert r.returncode != 0 and b"127.0.0.1:1" in r.stderr, r.stderr
    r = w.cse("put", str(tmp_path / "in"), "s3://cse/ep/o", "--kms-key-id", w.key, "--kms-endpoint-url",
              "http://kms.example.com", check=False)
    assert r.returncode != 0 and b"https://" in r.stderr, r.stderr
    with pytest.raises(Exception):
        w.s3.head_object(Bucket="cse", Key="ep/o")


def test_decrypting_needs_the_key_named_unless_discovery_is_asked_for(w, tmp_path):
    (tmp_path / "in").write_bytes(b"discover me")
    w.cse("put", str(tmp_path / "in"), "s3://cse/disc/o", "--kms-key-id", w.key)
    r = w.cse("get", "s3://cse/disc/o", str(tmp_path / "out"), check=False)
    assert r.returncode != 0 and b"--kms-key-id" in r.stderr
    w.cse("get", "s3://cse/disc/o", str(tmp_path / "out"), "--kms-discovery")
    assert (tmp_path / "out").read_bytes() == b"discover me"


def test_files_that_are_not_regular_are_refused_both_ways(w, tmp_path):
    r = w.cse("put", "/dev/null", "s3://cse/dev/null", "--kms-key-id", w.key, check=False)
    assert r.returncode != 0 and b"not a regular file" in r.stderr
    (tmp_path / "in").write_bytes(b"y" * 10)
    w.cse("put", str(tmp_path / "in"), "s3://cse/dev/o", "--kms-key-id", w.key)
    os.symlink("/dev/null", tmp_path / "link")
    r = w.cse("get", "s3://cse/dev/o", str(tmp_path / "link"), "--kms-key-id", w.key, check=False)
    assert r.returncode != 0 and b"not a regular file" in r.stderr
    assert os.readlink(tmp_path / "link") == "/dev/null"


def test_contexts_are_ascii_and_reserved_keys_are_refused(w, tmp_path):
    (tmp_path / "in").write_bytes(b"z")
    for ctx in ("team=caf\u00e9".encode().decode("unicode_escape"), "aws:x-amz-cek-alg=115", "kms_cmk_id=k"):
        r = w.cse("put", str(tmp_path / "in"), "s3://cse/ctx/o", "--kms-key-id", w.key, "--encryption-context", ctx,
                  check=False)
        assert r.returncode != 0 and b"encryption context" in r.stderr, (ctx, r.stderr)


def test_sigterm_leaves_no_plaintext_behind(w, tmp_path):
    import signal
    import time
    data = plaintext(64 * 1024 * 1024)
    (tmp_path / "in").write_bytes(data)
    w.cse("put", str(tmp_path / "in"), "s3://cse/term/o", "--kms-key-id", w.key)
    out = tmp_path / "outdir"
    out.mkdir()
    for delay in (0.05, 0.2, 0.5):
        p = subprocess.Popen([binary(), "cse", "get", "s3://cse/term/o", str(out / "o"), "--kms-key-id", w.key],
                             env=w.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        left = [x.name for x in out.iterdir() if x.name.startswith(".cse-")]
        assert left == [], left
        if (out / "o").exists():
            assert (out / "o").read_bytes() == data, "only a whole, authenticated object"
            (out / "o").unlink()

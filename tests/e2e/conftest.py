"""Fixtures that start the real `strongroom` binary on loopback and hand
real clients (boto3, the AWS CLI, requests) pointed at it."""
import json
import os
import random
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "tests" / "e2e" / "accounts.toml"

MAIN = ("AKIAE2EMAIN000000001", "E2eMainSecretKey000000000000000000000001")
ALT = ("AKIAE2EALT0000000001", "E2eAltSecretKey0000000000000000000000001")
ROOT = ("AKIAE2EROOT000000001", "E2eRootSecretKey000000000000000000000001")


def binary() -> str:
    b = os.environ.get("STRONGROOM_BIN")
    if not b:
        target = os.environ.get("CARGO_TARGET_DIR")
        if not target:
            meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO,
                                  capture_output=True, text=True, check=True).stdout
            target = json.loads(meta)["target_directory"]
        b = os.path.join(target, "release", "strongroom")
        os.environ["STRONGROOM_BIN"] = b
    assert os.path.exists(b), f"build the server first (cargo build --release): {b}"
    return b


def _ephemeral_floor() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_HANDED_OUT: set = set()
_PORT_RNG = random.SystemRandom()


def free_port() -> int:
    """A port to listen on, below the kernel's ephemeral range: a port the
    kernel hands out (bind to 0) can be taken by any outgoing connection
    between this check and the server's bind (seen: "Address already in
    use" at start-up); one below the range only by another listener. A port
    is handed out once per test session, so the four ports of one server (or
    of two servers made before either starts) never coincide."""
    top = min(_ephemeral_floor(), 32768)
    for _ in range(200):
        p = _PORT_RNG.randrange(10000, top)
        if p in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        _HANDED_OUT.add(p)
        return p
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
    _HANDED_OUT.add(p)
    return p


class Server:
    """One strongroom process with its own data directory and ports."""

    def __init__(self, data_dir: str, extra_args=()):
        self.data_dir = data_dir
        self.http_port = free_port()
        self.https_port = free_port()
        self.admin_port = free_port()
        self.website_port = free_port()
        # ports this object chose, never yet listened on: the only ones a
        # failed start may trade for others (a restart, or a test that set
        # the ports itself, keeps them)
        self._fresh = self._ports()
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = os.path.normpath(data_dir) + ".log"

    def _ports(self):
        return (self.http_port, self.https_port, self.admin_port, self.website_port)

    @property
    def http(self):
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https(self):
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def website(self):
        return f"http://127.0.0.1:{self.website_port}"

    @property
    def ca(self):
        return os.path.join(self.data_dir, "tls", "cert.pem")

    def start(self, env_extra=None, attempt=1):
        env = dict(os.environ)
        env["STRONGROOM_ROOT_ACCESS_KEY"], env["STRONGROOM_ROOT_SECRET_KEY"] = ROOT
        env.setdefault("RUST_LOG", "info,s3s=off")
        if env_extra:
            env.update(env_extra)
        self.log = open(self.log_path, "ab")
        log_from = self.log.tell()
        self.proc = subprocess.Popen(
            [binary(), "serve", "--data-dir", self.data_dir,
             "--http", f"127.0.0.1:{self.http_port}",
             "--https", f"127.0.0.1:{self.https_port}",
             "--admin", f"127.0.0.1:{self.admin_port}",
             "--website", f"127.0.0.1:{self.website_port}",
             "--bootstrap", str(BOOTSTRAP), *self.extra_args],
            stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                with open(self.log_path, "rb") as f:
                    f.seek(log_from)
                    said = f.read().decode("utf-8", "replace")
                if "Address already in use" in said and attempt < 3 and self._ports() == self._fresh:
                    # Another listener took one of our ports between the
                    # check and the bind: a fact of the harness, not of the
                    # server under test. New ports, one more try.
                    self.http_port, self.https_port = free_port(), free_port()
                    self.admin_port, self.website_port = free_port(), free_port()
                    self._fresh = self._ports()
                    return self.start(env_extra, attempt + 1)
                raise AssertionError(f"server exited early ({self.proc.returncode}); "
                                     f"{self.log_path} says:\n{said[:6000]}")
            try:
                if requests.get(f"http://127.0.0.1:{self.admin_port}/health", timeout=1).ok:
                    self._fresh = None
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.log.close()

    def log_bytes(self) -> bytes:
        """The server's log so far. Lines reach it in batches at most 5 ms
        apart (src/log_sink.rs): wait past that, so the last request's
        lines are in."""
        time.sleep(0.05)
        with open(self.log_path, "rb") as f:
            return f.read()

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()

    def rss_peak_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return -1

    def client(self, creds=MAIN, secure=False, region="us-east-1", **cfg):
        cfg.setdefault("signature_version", "s3v4")
        return boto3.client(
            "s3",
            endpoint_url=self.https if secure else self.http,
            aws_access_key_id=creds[0],
            aws_secret_access_key=creds[1],
            region_name=region,
            verify=self.ca if secure else None,
            config=Config(retries={"max_attempts": 1}, **cfg),
        )


@pytest.fixture(scope="session")
def server():
    with tempfile.TemporaryDirectory(prefix="strongroom-e2e-") as tmp:
        s = Server(os.path.join(tmp, "data")).start()
        yield s
        s.stop()


@pytest.fixture()
def s3(server):
    return server.client()


@pytest.fixture()
def bucket(s3):
    name = f"e2e-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    yield name
    # empty and remove
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=name)


def error_of(excinfo):
    """(HTTP status, AWS error code) of a botocore ClientError."""
    r = excinfo.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


# ---------------------------------------------------------------- skips are visible and allowed by name

SKIPS_ALLOWED = Path(__file__).with_name("skips-allowed.txt")
_skipped = []


def _allowed_skips():
    """(node id pattern, reason) lines of skips-allowed.txt ('*' matches
    anything)."""
    out = []
    for line in SKIPS_ALLOWED.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            glob, _, why = line.partition(" ")
            out.append((glob, why.strip()))
    return out


def pytest_runtest_logreport(report):
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append((report.nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    """A skip not on tests/e2e/skips-allowed.txt fails the run: a test that
    silently stops running is a test that cannot fail."""
    import re
    # only '*' is a wildcard: node ids are full of brackets
    allowed = [re.compile(re.escape(g).replace(r"\*", ".*")) for g, _ in _allowed_skips()]
    stray = [(n, r) for n, r in _skipped if not any(a.fullmatch(n) for a in allowed)]
    if stray:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_sep("=", "skips not on tests/e2e/skips-allowed.txt", red=True)
            for n, r in stray:
                tr.write_line(f"{n}: {r}")
        session.exitstatus = 1

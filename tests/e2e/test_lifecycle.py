"""Process lifecycle: SIGTERM drains in-flight requests and exits cleanly;
generated root credentials are printed once and kept mode 0600."""
import os
import signal
import stat
import subprocess
import threading
import time

import requests

from conftest import Server, binary, free_port


def test_sigterm_drains_in_flight_requests(tmp_path):
    s = Server(str(tmp_path / "data")).start()
    c = s.client()
    c.create_bucket(Bucket="drain")
    url = c.generate_presigned_url("put_object", Params={"Bucket": "drain", "Key": "slow"})
    result = {}

    def slow_body():
        for _ in range(10):
            yield b"x" * 1000
            time.sleep(0.15)

    def upload():
        result["status"] = requests.put(url, data=slow_body()).status_code

    t = threading.Thread(target=upload)
    t.start()
    time.sleep(0.4)
    s.proc.send_signal(signal.SIGTERM)
    t.join(timeout=30)
    assert result.get("status") == 200, "the in-flight upload completed"
    assert s.proc.wait(timeout=30) == 0, "clean exit"
    s.log.close()
    s2 = Server(s.data_dir).start()
    try:
        assert s2.client().get_object(Bucket="drain", Key="slow")["Body"].read() == b"x" * 10_000
    finally:
        s2.stop()


def test_generated_root_credentials_are_printed_once_and_protected(tmp_path):
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_ROOT_")}
    port = free_port()

    def run():
        p = subprocess.Popen([binary(), "serve", "--data-dir", str(data), "--http", f"127.0.0.1:{port}",
                              "--https", "off", "--admin", "off", "--website", "off"], env=env,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        lines = []
        deadline = time.time() + 20
        while time.time() < deadline:
            line = p.stdout.readline()
            lines.append(line)
            if line.startswith("Try:"):
                break
        p.terminate()
        p.wait(timeout=30)
        return "".join(lines)

    first = run()
    assert "AWS_SECRET_ACCESS_KEY=" in first
    secret = first.split("AWS_SECRET_ACCESS_KEY=")[1].split()[0]
    creds = data / "root-credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert secret in creds.read_text()
    second = run()
    assert secret not in second, "the secret is printed only once"

#!/usr/bin/env bash
# Runs the ceph/s3-tests conformance suite (a checkout outside this repo) against
# a fresh Strongroom started on loopback with the suite's accounts.
#
#   S3TESTS_DIR=/path/to/s3-tests S3TESTS_VENV=/path/to/venv scripts/s3tests.sh [FEATURE...]
#
# Default features: the core selections of issue 2. Prints run.sh's summary.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${S3TESTS_DIR:?set S3TESTS_DIR to a ceph/s3-tests checkout}"
: "${S3TESTS_VENV:?set S3TESTS_VENV to its venv}"
RUNNER="${S3TESTS_RUNNER:-$HERE/../shared/s3tests/run.sh}"
if [[ -z "${STRONGROOM_BIN:-}" ]]; then
  TARGET="${CARGO_TARGET_DIR:-$(cd "$HERE" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')}"
  STRONGROOM_BIN="$TARGET/release/strongroom"
fi
BIN="$STRONGROOM_BIN"
[[ -x "$BIN" ]] || { echo "build first: cargo build --release (looked for $BIN)" >&2; exit 2; }
FEATURES=("$@")
[[ ${#FEATURES[@]} -gt 0 ]] || FEATURES=(basic_ops listing multipart copy conditional tagging checksum auth_headers presigned)
DATA="$(mktemp -d /tmp/strongroom-s3t.XXXXXX)"
PORT="${S3TESTS_PORT:-19000}"
"$BIN" serve --data-dir "$DATA" --http "127.0.0.1:$PORT" --https "127.0.0.1:$((PORT + 443))" --admin off --website off \
  --bootstrap "$HERE/tests/s3tests-bootstrap.toml" --lifecycle-day-seconds "${S3TESTS_LC_DEBUG_INTERVAL:-10}" \
  > "$DATA/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
# two KMS keys of the main account for the SSE-KMS tests (ARNs: the suite
# compares them verbatim with the key id S3 echoes)
read -r KEY1 KEY2 < <("$S3TESTS_VENV/bin/python" - "$PORT" <<'PY'
import sys, boto3
k = boto3.client("kms", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                 aws_access_key_id="AKIAS3TESTMAIN000001",
                 aws_secret_access_key="S3testsMainSecretKey00000000000000000001")
print(k.create_key()["KeyMetadata"]["Arn"], k.create_key()["KeyMetadata"]["Arn"])
PY
)
export S3TESTS_KMS_KEYID="$KEY1" S3TESTS_KMS_KEYID2="$KEY2"
# S3TESTS_SECURE=1: run over HTTPS (SSE-C needs it, as on AWS)
if [[ "${S3TESTS_SECURE:-0}" == 1 ]]; then
  # the suite's raw `requests` calls (POST object) verify certificates
  export REQUESTS_CA_BUNDLE="$DATA/tls/cert.pem"
  S3TESTS_DIR="$S3TESTS_DIR" S3TESTS_VENV="$S3TESTS_VENV" "$RUNNER" 127.0.0.1 "$((PORT + 443))" true "${FEATURES[@]}"
else
  S3TESTS_DIR="$S3TESTS_DIR" S3TESTS_VENV="$S3TESTS_VENV" "$RUNNER" 127.0.0.1 "$PORT" false "${FEATURES[@]}"
fi

#!/usr/bin/env bash
# The whole test suite, every layer, as CI runs it:
#   1. installs the real clients the tests drive (pinned, idempotent)
#   2. cargo fmt --check and clippy -D warnings
#   3. unit tests (SigV4 / checksum known-answer vectors, store, parsers)
#   4. runs every fuzz target briefly from its kept corpus, each checking a
#      property (docs/fuzzing.md)
#   5. builds the release binary once and runs the end-to-end suite against it
#      (AWS CLI, boto3, curl, headless Chromium, kill -9 crash rounds, 2 GiB
#      flat-memory check)
#   6. ceph/s3-tests, when S3TESTS_DIR and S3TESTS_VENV point at a checkout and venv
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# one build cache outside the clone, reused across CI runs; works when empty
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/strongroom-target}"
export CARGO_TERM_COLOR=never

step() { printf '\n=== %s ===\n' "$*"; }

step "test dependencies"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
# rclone, a Go client of the client matrix (Debian's)
command -v rclone >/dev/null || { apt-get update -qq && apt-get install -y -qq rclone; }
# the AWS CLI v2 of the client matrix: Debian's, at /usr/bin/aws (the
# pinned v1 from PyPI stays first on PATH for the rest of the suite)
/usr/bin/aws --version 2>/dev/null | grep -q '^aws-cli/2' || { apt-get update -qq && apt-get install -y -qq awscli; }
# the AWS SDK for JavaScript v3 of the client matrix (Node from Debian,
# the SDK pinned by tests/e2e/js/package-lock.json)
command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
(cd tests/e2e/js && npm ci --no-audit --no-fund --silent)
# AWS's S3 Encryption Client for Ruby (EncryptionV2, Debian's) for the
# client-side encryption interop tests
ruby -e "require 'aws-sdk-s3'; require 'aws-sdk-kms'" 2>/dev/null || { apt-get update -qq && apt-get install -y -qq ruby-aws-sdk-s3 ruby-aws-sdk-kms; }
# the browser the CORS / static website tests drive (Debian's, headless)
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

step "unit tests"
cargo test --release --locked --workspace

step "fuzz targets (brief)"
scripts/fuzz.sh

step "release build"
cargo build --release --locked
export STRONGROOM_BIN="$CARGO_TARGET_DIR/release/strongroom"

step "end-to-end tests"
python3 -m pytest tests/e2e -q -rs -p no:cacheprovider

if [[ -n "${S3TESTS_DIR:-}" && -n "${S3TESTS_VENV:-}" ]]; then
  step "ceph/s3-tests"
  scripts/s3tests.sh || true   # conformance is measured and reported, not gated
fi

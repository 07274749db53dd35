#!/usr/bin/env bash
# Runs every fuzz target briefly (FUZZ_SECS each, default 15) from its seed
# corpus in a scratch directory; a crash fails the run and leaves its input
# in fuzz/artifacts/. Installs what cargo-fuzz needs, idempotently. The
# differential target keeps a scratch store in $TMPDIR while it runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/strongroom-target}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in policy_parse sigv4_authorization differential_request; do
  scratch="$(mktemp -d)"
  cp corpus/"$target"/seed* "$scratch"/
  log="$scratch.log"
  if ! cargo +nightly fuzz run "$target" "$scratch" -- -max_total_time="${FUZZ_SECS:-15}" >"$log" 2>&1; then
    tail -40 "$log"   # the build error or the crash, not only its last lines
    exit 1
  fi
  tail -2 "$log"
  rm -f "$log"
  rm -rf "$scratch"
done
# the differential target's scratch stores
rm -rf "${TMPDIR:-/tmp}"/strongroom-fuzz-*

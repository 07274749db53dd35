#!/usr/bin/env bash
# Runs every fuzz target in fuzz/fuzz_targets for FUZZ_SECS seconds each
# (default 6) from its kept corpus (fuzz/corpus/<target>, copied to a
# scratch directory so a CI run never changes the repo). Every target
# asserts a property (round trip, agreement, refusal leaves state as it
# was), not only "no panic"; a crash or a failed property fails the run and
# leaves its input in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [target...]      run some targets only
#   FUZZ_GROW=1 scripts/fuzz.sh      fuzz in place, then minimise the kept
#                                    corpus (cargo fuzz cmin): how the corpus
#                                    in the repo is grown; commit the result
#
# Installs what cargo-fuzz needs, idempotently. Targets that open a store
# or start a server in process keep a scratch store in $TMPDIR (the server's
# in /dev/shm) while they run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/strongroom-target}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
# No AddressSanitizer: the code under test is safe Rust (every workspace
# crate forbids unsafe), and without it the targets build and run several
# times faster; 16 codegen units for the same reason. Debug assertions stay
# on. Build and run take the same flags, so the run does not rebuild.
flags=(--sanitizer none --codegen-units 16)
# one build of every target (their code is one library, fuzz/src), then the runs
cargo +nightly fuzz build "${flags[@]}" >/dev/null 2>"${TMPDIR:-/tmp}/strongroom-fuzz-build.log" || {
  tail -60 "${TMPDIR:-/tmp}/strongroom-fuzz-build.log"; exit 1; }
for target in "${targets[@]}"; do
  mkdir -p corpus/"$target"
  if [[ -n "${FUZZ_GROW:-}" ]]; then
    cargo +nightly fuzz run "${flags[@]}" "$target" corpus/"$target" -- -max_total_time="${FUZZ_SECS:-300}"
    cargo +nightly fuzz cmin "${flags[@]}" "$target" corpus/"$target"
    continue
  fi
  scratch="$(mktemp -d)"
  cp -r corpus/"$target"/. "$scratch"/
  log="$scratch.log"
  if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch" -- -max_total_time="${FUZZ_SECS:-6}" >"$log" 2>&1; then
    echo "fuzz target $target failed:"
    tail -60 "$log"   # the property that failed, or the crash, and its input
    exit 1
  fi
  printf '%-22s %s\n' "$target" "$(grep -E '^#[0-9]+' "$log" | tail -1)"
  rm -f "$log"
  rm -rf "$scratch"
done
# the scratch stores of the targets that run a store or a server
rm -rf "${TMPDIR:-/tmp}"/strongroom-fuzz-* /dev/shm/strongroom-fuzz-*

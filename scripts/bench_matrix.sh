#!/usr/bin/env bash
# The performance issue's table, measured in one run: this machine's limits
# (`strongroom bench limits`), then `strongroom bench` against one fresh
# Strongroom (SSE-S3 by default, fsync on every write) over HTTP, HTTPS
# HTTP/1.1, HTTPS HTTP/2 (all requests on one connection: https2; spread
# over four: https2x4) and, when a Garage binary is given, against a
# fresh single-node Garage over HTTP, rounds interleaved (every workload
# on every target in round 1, then round 2, ...). Prints the median of the
# rounds for each cell, the HTTPS/HTTP and Strongroom/Garage ratios, and
# each HTTP figure as a fraction of the limit that bounds it; also wrk's
# ops/s on the same 4 KiB GET, pre-signed, so the bench client can be
# checked against a client written in C. A figure for notes, not a test:
# no thresholds. Needs curl, python3 (boto3 for the pre-signed URL), wrk
# optional.
#
#   scripts/bench_matrix.sh [path/to/strongroom] [path/to/garage]
#   env ROUNDS=3 SECS=5 CONNS=16 DIR=/var/tmp (the disk under test)
#       ONLY="get4k put1m ..." (a subset of the workloads below)
set -euo pipefail
BIN=$(realpath "${1:-target/release/strongroom}")
GARAGE=${2:-}
ROUNDS=${ROUNDS:-3}; SECS=${SECS:-5}; CONNS=${CONNS:-16}; DIR=${DIR:-/var/tmp}
HERE=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d "$DIR/bench-matrix.XXXXXX")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$D"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HP=$(port); SP=$(port)

"$BIN" serve --data-dir "$D/sr" --http "127.0.0.1:$HP" --https "127.0.0.1:$SP" --admin off --website off \
  --bootstrap "$HERE/tests/e2e/accounts.toml" > "$D/sr.log" 2>&1 &
pids+=($!); SRPID=$!
for _ in $(seq 100); do [[ -f "$D/sr/tls/cert.pem" ]] && curl -s -o /dev/null "http://127.0.0.1:$HP/" && break; sleep 0.2; done
CA="$D/sr/tls/cert.pem"
SR_KEY=AKIAE2EMAIN000000001; SR_SECRET=E2eMainSecretKey000000000000000000000001

declare -A EP KEY SECRET REGION
EP[http]="--endpoint-url http://127.0.0.1:$HP"
EP[https1]="--endpoint-url https://127.0.0.1:$SP --ca-bundle $CA"
EP[https2]="--endpoint-url https://127.0.0.1:$SP --ca-bundle $CA --http2"
EP[https2x4]="--endpoint-url https://127.0.0.1:$SP --ca-bundle $CA --http2 --h2-connections 4"
for t in http https1 https2 https2x4; do KEY[$t]=$SR_KEY; SECRET[$t]=$SR_SECRET; REGION[$t]=us-east-1; done
TARGETS="http https1 https2 https2x4"

if [[ -n $GARAGE ]]; then
  GP=$(port); GRPC=$(port); GADM=$(port)
  mkdir -p "$D/garage/meta" "$D/garage/data"
  cat > "$D/garage.toml" <<EOF
metadata_dir = "$D/garage/meta"
data_dir = "$D/garage/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$GRPC"
rpc_public_addr = "127.0.0.1:$GRPC"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$GP"
[admin]
api_bind_addr = "127.0.0.1:$GADM"
EOF
  g() { "$GARAGE" -c "$D/garage.toml" "$@"; }
  g server > "$D/garage.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do g status > /dev/null 2>&1 && break; sleep 0.2; done
  node=$(g status 2>/dev/null | awk '/127.0.0.1/ {print $1; exit}')
  g layout assign -z dc1 -c 10G "$node" > /dev/null
  g layout apply --version 1 > /dev/null
  GKEY=GK$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  GSECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  g key import --yes "$GKEY" "$GSECRET" -n bench > /dev/null
  g bucket create strongroom-bench > /dev/null
  g bucket allow --read --write --owner strongroom-bench --key "$GKEY" > /dev/null
  EP[garage]="--endpoint-url http://127.0.0.1:$GP"; KEY[garage]=$GKEY; SECRET[garage]=$GSECRET; REGION[garage]=garage
  TARGETS="$TARGETS garage"
fi

"$BIN" bench limits --dir "$D" --write-size 1GiB --json "$D/limits.json" > "$D/limits.txt"
cat "$D/limits.txt"

# workload name -> bench arguments
declare -A W
W[get4k]="get --size 4KiB -c $CONNS --keys 64 --duration $SECS"
W[put4k]="put --size 4KiB -c $CONNS --keys 64 --duration $SECS"
W[get1m]="get --size 1MiB -c $CONNS --keys 64 --duration $SECS"
W[put1m]="put --size 1MiB -c $CONNS --keys 64 --duration $SECS"
W[put1g]="put --size 1GiB -c 1 --keys 1 --ops 1"
W[get1g]="get --size 1GiB -c 1 --keys 1 --ops 2"
ONLY=${ONLY:-"get4k put4k get1m put1m put1g get1g"}

run() { # target workload round
  local t=$1 w=$2 r=$3 extra=()
  # the data set of a GET is made once per target and kept
  [[ $w == get* ]] && extra=(--keep --prefix "set-$w/") && [[ -f "$D/made-$t-$w" ]] && extra+=(--reuse)
  AWS_ACCESS_KEY_ID=${KEY[$t]} AWS_SECRET_ACCESS_KEY=${SECRET[$t]} \
    "$BIN" bench ${W[$w]} ${EP[$t]} --region "${REGION[$t]}" "${extra[@]}" --json "$D/$t-$w-$r.json" > /dev/null 2>&1 \
    || { echo "  ($t $w round $r failed)"; return; }
  touch "$D/made-$t-$w"
}
for r in $(seq "$ROUNDS"); do
  for w in $ONLY; do
    for t in $TARGETS; do
      # HTTPS for the 1 GiB single streams is left out: one figure a round
      [[ $w == *1g && $t == https* ]] && continue
      run "$t" "$w" "$r"
    done
  done
  echo "round $r done"
done

WRK=""
if command -v wrk > /dev/null && [[ " $ONLY " == *" get4k "* ]]; then
  url=$(python3 - "$HP" <<'PY'
import sys
import boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="AKIAE2EMAIN000000001", aws_secret_access_key="E2eMainSecretKey000000000000000000000001",
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
print(s3.generate_presigned_url("get_object", Params={"Bucket": "strongroom-bench", "Key": "set-get4k/0000000000"}, ExpiresIn=3600))
PY
)
  for r in $(seq "$ROUNDS"); do
    wrk -t2 -c"$CONNS" -d"${SECS}s" "$url" | awk '/Requests\/sec/ {print $2}' >> "$D/wrk"
  done
  WRK=$(sort -n "$D/wrk" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
fi

python3 - "$D" "$ROUNDS" "$ONLY" "$TARGETS" "$WRK" <<'PY'
import json, os, statistics, sys
d, rounds, only, targets, wrk = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5]
lim = json.load(open(f"{d}/limits.json"))
def cell(t, w):
    vals, cpu = [], []
    for r in range(1, rounds + 1):
        p = f"{d}/{t}-{w}-{r}.json"
        if not os.path.exists(p):
            continue
        j = json.load(open(p))
        op = j["ops"][0]
        vals.append(op["ops_per_s"] if w.endswith("4k") else op["mb_per_s"])
        cpu.append(j["client_cpu_cores"])
    if not vals:
        return None
    return statistics.median(vals), vals, statistics.median(cpu)
unit = lambda w: "ops/s" if w.endswith("4k") else "MB/s"
print()
print(f"medians of {rounds} rounds (each round's figures in brackets); client CPU in cores")
for w in only:
    print(f"\n{w} ({unit(w)})")
    base = cell("http", w)
    for t in targets:
        c = cell(t, w)
        if c is None:
            continue
        m, vals, cpu = c
        extra = ""
        if base and t != "http":
            extra = f"  {m / base[0]:.2f}x of Strongroom HTTP" if t.startswith("https") else f"  Strongroom HTTP is {base[0] / m:.2f}x of this"
        print(f"  {t:8} {m:10.1f}  [{', '.join(f'{v:.0f}' for v in vals)}]  client {cpu:.2f}{extra}")
    if base:
        m = base[0]
        loop = ("loopback TCP, one stream", lim["loopback_tcp_mb_s"])
        dec = ("loopback stream via page cache + AES-GCM", lim.get("decrypting_stream_mb_s", 0))
        fracs = {"get4k": [("bare hyper 4 KiB GET", lim["bare_hyper_4k_get_per_s"])],
                 "put1g": [("fsync'd sequential write", lim["fsync_write_mb_s"])],
                 "get1g": [loop, dec],
                 "get1m": [loop],
                 "put1m": [("fsync'd sequential write", lim["fsync_write_mb_s"])]}.get(w, [])
        for what, limit in fracs:
            if limit:
                print(f"  Strongroom HTTP = {m / limit:.2f} of {what} ({limit:.0f})")
if wrk:
    b = cell("http", "get4k")
    print(f"\nwrk, same 4 KiB GET pre-signed, {rounds} rounds median: {float(wrk):.0f} ops/s"
          + (f" (strongroom bench reached {b[0] / float(wrk):.2f}x of it)" if b else ""))
PY
echo "server peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$SRPID/status")"

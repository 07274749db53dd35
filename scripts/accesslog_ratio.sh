#!/usr/bin/env bash
# The cost of server access logging: 4 KiB pre-signed GET and PUT ops/s
# with wrk (16 connections) against one fresh server, a logged and an
# unlogged bucket, rounds interleaved; prints ops/s, latency and server CPU
# per request for both (with and without the delivery that follows), the
# on/off ratios (of the sums, and the medians of the rounds' ratios of
# ops/s and of CPU per request including delivery) and the server's peak
# RSS. A figure for notes, not a test: no thresholds. Needs wrk and boto3.
#
#   scripts/accesslog_ratio.sh [path/to/strongroom] (env ROUNDS=4 SECS=5 CONNS=16 PORT=9331)
set -euo pipefail
BIN=${1:-target/release/strongroom}
ROUNDS=${ROUNDS:-4}; SECS=${SECS:-5}; CONNS=${CONNS:-16}; PORT=${PORT:-9331}
HERE=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d /var/tmp/accesslog-ratio.XXXXXX)
"$BIN" serve --data-dir "$D/data" --http "127.0.0.1:$PORT" --https off --admin off --website off \
  --log-delivery-interval "${DELIVERY:-5}" --bootstrap "$HERE/tests/e2e/accounts.toml" > "$D/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done
python3 - "$PORT" > "$D/urls" <<'PY'
import json, sys
import boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="AKIAE2EMAIN000000001",
                  aws_secret_access_key="E2eMainSecretKey000000000000000000000001",
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
for b in ("plainbench", "loggedbench", "logsbench"):
    s3.create_bucket(Bucket=b)
s3.put_bucket_policy(Bucket="logsbench", Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
    "Resource": "arn:aws:s3:::logsbench/*"}]}))
s3.put_bucket_logging(Bucket="loggedbench", BucketLoggingStatus={
    "LoggingEnabled": {"TargetBucket": "logsbench", "TargetPrefix": "l/"}})
for b in ("plainbench", "loggedbench"):
    s3.put_object(Bucket=b, Key="small", Body=b"x" * 4096)
    print(s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "small"}, ExpiresIn=3600))
    print(s3.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "put-target"}, ExpiresIn=3600))
PY
mapfile -t U < "$D/urls"
printf 'wrk.method = "PUT"\nwrk.body = string.rep("x", 4096)\n' > "$D/put.lua"
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# Each run is followed by a drain: wait until the server is idle (log
# delivery of that run's records done), so no run pays for the previous
# run's delivery. CPU per op counts the run and its drain: the whole cost.
drain() { local a b; a=$(cpu); while sleep 1; b=$(cpu); (( b - a > $(getconf CLK_TCK) / 50 )); do a=$b; done; }
declare -A runs cpus
for kind in PUT GET; do
  for r in $(seq "$ROUNDS"); do
    # off-on in odd rounds, on-off in even ones: a drift in the machine's
    # speed during a round falls on both sides alike
    for side in $( (( r % 2 )) && echo 0 1 || echo 1 0); do
      name=$([[ $side == 0 ]] && echo off || echo on)
      drain
      c0=$(cpu)
      if [[ $kind == GET ]]; then
        out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "${U[$((side * 2))]}")
      else
        out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$D/put.lua" "${U[$((side * 2 + 1))]}")
      fi
      c1=$(cpu)
      [[ $side == 1 ]] && sleep "${DELIVERY:-5}" && drain
      c2=$(cpu)
      rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
      n=$(awk '/requests in/ {print $1}' <<< "$out")
      lat=$(awk '/Latency/ {print $2}' <<< "$out")
      us=$(python3 -c "print(round(($c1 - $c0) * 1e6 / $(getconf CLK_TCK) / $n, 1))")
      usd=$(python3 -c "print(round(($c2 - $c0) * 1e6 / $(getconf CLK_TCK) / $n, 1))")
      echo "round $r logging=$name $kind ops/s=$rps latency=$lat server_cpu_us/op=$us (with delivery: $usd)"
      runs[$name$kind]+="$rps "; cpus[$name$kind]+="$usd "
    done
  done
done
# the ratio of the sums, and the median of the rounds' ratios (of ops/s,
# and of server CPU per request: off/on, so that a cost is below 1 too)
for kind in GET PUT; do
  python3 - "${runs[on$kind]}" "${runs[off$kind]}" "${cpus[on$kind]}" "${cpus[off$kind]}" <<PY
import statistics, sys
on, off, con, coff = ([float(x) for x in a.split()] for a in sys.argv[1:])
print("$kind on/off: %.2fx (median of rounds %.2fx; CPU per request incl. delivery, off/on: median %.2fx)" % (
    sum(on) / sum(off), statistics.median(a / b for a, b in zip(on, off)),
    statistics.median(b / a for a, b in zip(con, coff))))
PY
done
grep -E '^VmHWM' "/proc/$pid/status" | awk '{print "server peak RSS: " int($2 / 1024) " MiB"}'

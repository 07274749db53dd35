#!/usr/bin/env bash
# Client-side encryption's cost: `strongroom cse put/get` of one large file
# against `aws s3 cp` of the same file to the same fresh server (plain
# HTTP, SSE-S3 and fsync on the server either way), rounds interleaved;
# prints MB/s of each and the time ratios (the client-side-encryption
# issue's target: within 1.3x of the unencrypted upload). A figure for
# notes, not a test. Needs the AWS CLI and boto3.
#
#   scripts/cse_ratio.sh [path/to/strongroom] (env ROUNDS=3 MIB=1024 PORT=9351)
set -euo pipefail
BIN=${1:-target/release/strongroom}
ROUNDS=${ROUNDS:-3}; MIB=${MIB:-1024}; PORT=${PORT:-9351}
HERE=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d /var/tmp/cse-ratio.XXXXXX)
"$BIN" serve --data-dir "$D/data" --http "127.0.0.1:$PORT" --https off --admin off --website off \
  --bootstrap "$HERE/tests/e2e/accounts.toml" > "$D/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done
export AWS_ACCESS_KEY_ID=AKIAE2EMAIN000000001 AWS_SECRET_ACCESS_KEY=E2eMainSecretKey000000000000000000000001
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 RUST_BACKTRACE=0
EP="http://127.0.0.1:$PORT"
# one endpoint for S3 and KMS (strongroom cse never takes KMS from --endpoint-url)
export AWS_ENDPOINT_URL="$EP"
KEY=$(python3 - "$EP" <<'PY'
import sys, boto3
kms = boto3.client("kms", endpoint_url=sys.argv[1])
boto3.client("s3", endpoint_url=sys.argv[1]).create_bucket(Bucket="cse")
print(kms.create_key()["KeyMetadata"]["Arn"])
PY
)
head -c "$((MIB * 1024 * 1024))" /dev/urandom > "$D/big"
secs() { local s0; s0=$(date +%s.%N); "$@" > /dev/null; python3 -c "import time; print(time.time() - $s0)"; }
declare -A sum
for r in $(seq "$ROUNDS"); do
  t1=$(secs aws --endpoint-url "$EP" s3 cp "$D/big" s3://cse/plain)
  g1=$(secs aws --endpoint-url "$EP" s3 cp s3://cse/plain "$D/back")
  rm -f "$D/back"
  t2=$(secs "$BIN" cse put "$D/big" s3://cse/enc --endpoint-url "$EP" --kms-key-id "$KEY")
  g2=$(secs "$BIN" cse get s3://cse/enc "$D/back" --endpoint-url "$EP" --kms-key-id "$KEY")
  cmp -s "$D/big" "$D/back" || { echo "cse read back different bytes"; exit 1; }
  rm -f "$D/back"
  mbs() { python3 -c "print(round($MIB * 1.048576 / $1))"; }
  echo "round $r aws s3 cp: put $(mbs "$t1") MB/s, get $(mbs "$g1") MB/s; strongroom cse: put $(mbs "$t2") MB/s, get $(mbs "$g2") MB/s"
  for k in t1 g1 t2 g2; do sum[$k]=$(python3 -c "print(${sum[$k]:-0} + ${!k})"); done
done
python3 -c "print('cse put time / aws s3 cp put time: %.2fx' % (${sum[t2]} / ${sum[t1]}))"
python3 -c "print('cse get time / aws s3 cp get time: %.2fx' % (${sum[g2]} / ${sum[g1]}))"

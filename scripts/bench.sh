#!/usr/bin/env bash
# Benchmarks Passlink on this machine and writes bench/REPORT.md.
#
#   scripts/bench.sh            the full run (about 6 minutes)
#   scripts/bench.sh --quick    shorter phases, for a smoke check
#
# Starts everything in release mode: a private Redis (no persistence) on a
# spare port, the API, workers, the hyper baseline, and a timing SMTP sink;
# uses the local RabbitMQ with queue names of its own (removed at the end).
# The load tool is oha (installed with cargo when missing, pinned).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PASSLINK_ROOT"

OHA_VERSION=1.16.0
QUICK=false
[ "${1:-}" = "--quick" ] && QUICK=true
if $QUICK; then SECS=3; E2E_N=6000; RATE_N=3000; else SECS=10; E2E_N=30000; RATE_N=10000; fi
USERS=100000
CONNS=64

OUT=bench/out
mkdir -p "$OUT"
REDIS_PORT=6391; API_PORT=8092; HELLO_PORT=8091; SMTP_PORT=2527
W1_METRICS=9192; W2_METRICS=9193
PREFIX=bench; QUEUE=bench.send_link; EXCHANGE=bench

ensure_rabbitmq
command -v oha >/dev/null || {
  say "installing oha $OHA_VERSION (the HTTP load tool)"
  cargo install --locked --quiet "oha@$OHA_VERSION"
}
for port in $REDIS_PORT $API_PORT $HELLO_PORT $SMTP_PORT $W1_METRICS $W2_METRICS; do
  port_open "$port" && die "port $port is in use"
done

say "building in release mode"
cargo build --release --quiet -p passlink-api -p passlink-worker -p passlink-bench
BIN=target/release

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  $BIN/passlink-bench amqp-clean --exchange "$EXCHANGE" --queue "$QUEUE" \
    --queue "$QUEUE.dead" --queue "$QUEUE.retry.1" --queue "$QUEUE.retry.2" \
    --queue "$QUEUE.retry.3" --queue "$QUEUE.retry.4" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

say "starting a private Redis on $REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --daemonize yes >/dev/null
for q in "$QUEUE" "$QUEUE.dead"; do rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true; done

key() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
export PASSLINK_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export PASSLINK_REDIS_PREFIX=$PREFIX
export PASSLINK_AMQP_QUEUE=$QUEUE PASSLINK_AMQP_EXCHANGE=$EXCHANGE
export PASSLINK_CODE_HMAC_KEY=$(key) PASSLINK_SEAL_KEYS=b1:$(key)
export PASSLINK_TOKENS_FILE=$OUT/tokens.json
export PASSLINK_LOG=warn
# Throughput is measured without the rate limits (one caller, many links).
export PASSLINK_RATE_USER_LINKS=0 PASSLINK_RATE_CALLER_PER_MINUTE=0
rm -f "$PASSLINK_TOKENS_FILE"
TOKEN=$($BIN/passlink-api token create --subject bench --org '*' \
  --permission user.passkey.write --file "$PASSLINK_TOKENS_FILE" 2>/dev/null)

python3 tests/data/make-users.py "$USERS" 11 > "$OUT/users.ndjson"
reset_data() {
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  for q in "$QUEUE" "$QUEUE.dead"; do rabbitmqctl -q purge_queue "$q" >/dev/null 2>&1 || true; done
  $BIN/passlink-api import-users "$OUT/users.ndjson" >/dev/null 2>&1
}
reset_data

URL_RE="http://127.0.0.1:PORT/v3alpha/users/2000000000000[0-9]{5}/webauthn/registration_link"
oha_run() { # name port body [rate]
  local name=$1 port=$2 body=$3 rate=${4:-}
  local args=(-z "${SECS}s" -c "$CONNS" --no-tui --output-format json -m POST
    -H "authorization: Bearer $TOKEN" -T application/json -d "$body"
    --rand-regex-url "${URL_RE/PORT/$port}")
  [ -n "$rate" ] && args+=(-q "$rate" --latency-correction)
  oha "${args[@]}" > "$OUT/$name.json"
}

peak_rss() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

say "baseline: hyper hello world"
$BIN/passlink-bench hello --listen "127.0.0.1:$HELLO_PORT" > "$OUT/hello.log" 2>&1 &
HELLO=$!; pids+=($HELLO)
wait_port "$HELLO_PORT" 10 hello
oha_run hello "$HELLO_PORT" '{"returnCode":{}}'
kill "$HELLO"

say "starting the API"
PASSLINK_LISTEN=127.0.0.1:$API_PORT \
  $BIN/passlink-api > "$OUT/api.log" 2>&1 &
API=$!; pids+=($API)
wait_port "$API_PORT" 30 passlink-api
API_URL=http://127.0.0.1:$API_PORT

say "API saturation: returnCode"
oha_run return_max "$API_PORT" '{"returnCode":{}}'
say "API saturation: sendLink (no workers: jobs queue up)"
oha_run send_max "$API_PORT" '{"sendLink":{}}'
reset_data
say "API at 5,000 links/s: returnCode and sendLink"
oha_run return_5k "$API_PORT" '{"returnCode":{}}' 5000
oha_run send_5k "$API_PORT" '{"sendLink":{}}' 5000
reset_data
say "gRPC saturation: returnCode"
$BIN/passlink-bench grpc --api "$API_URL" --token "$TOKEN" --users "$OUT/users.ndjson" \
  --duration "${SECS}s" --concurrency "$CONNS" > "$OUT/grpc.json"
reset_data

start_worker() { # metrics-port
  PASSLINK_SMTP_PORT=$SMTP_PORT PASSLINK_WORKER_METRICS_LISTEN=127.0.0.1:$1 \
  PASSLINK_WORKER_CONCURRENCY=64 PASSLINK_WORKER_PREFETCH=64 \
    $BIN/passlink-worker > "$OUT/worker-$1.log" 2>&1 &
  pids+=($!)
  echo $!
}
e2e() { # name count rate
  $BIN/passlink-bench e2e --api "$API_URL" --token "$TOKEN" --users "$OUT/users.ndjson" \
    --count "$2" --rate "$3" --concurrency "$CONNS" --smtp-listen "127.0.0.1:$SMTP_PORT" \
    > "$OUT/$1.json"
}

# Each phase gets fresh workers: the sink of the last phase is gone, and
# pooled SMTP connections to it with it.
stop_workers() { for pid in "$@"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }

say "end to end with one worker: $E2E_N links"
W1=$(start_worker $W1_METRICS)
wait_port "$W1_METRICS" 30 passlink-worker
e2e e2e_1w "$E2E_N" 0
W1_KIB=$(peak_rss "$W1")
stop_workers "$W1"
reset_data

say "end to end with two workers: $E2E_N links"
W1=$(start_worker $W1_METRICS); W2=$(start_worker $W2_METRICS)
wait_port "$W1_METRICS" 30 passlink-worker; wait_port "$W2_METRICS" 30 passlink-worker
e2e e2e_2w "$E2E_N" 0
W2_KIB=$(( $(peak_rss "$W1") > $(peak_rss "$W2") ? $(peak_rss "$W1") : $(peak_rss "$W2") ))
stop_workers "$W1" "$W2"
reset_data

say "end to end with two workers at 1,000 links/s: $RATE_N links"
W1=$(start_worker $W1_METRICS); W2=$(start_worker $W2_METRICS)
wait_port "$W1_METRICS" 30 passlink-worker; wait_port "$W2_METRICS" 30 passlink-worker
e2e e2e_rate "$RATE_N" 1000
stop_workers "$W1" "$W2"

echo "{\"api_kib\": $(peak_rss "$API"), \"worker_one_kib\": $W1_KIB, \"worker_two_kib\": $W2_KIB}" \
  > "$OUT/memory.json"

say "writing bench/REPORT.md"
python3 bench/report.py "$OUT" "$QUICK" > bench/REPORT.md
cat bench/REPORT.md

#!/usr/bin/env bash
# Runs Passlink locally: Redis and RabbitMQ (started when not running), the
# maildev SMTP catcher with its web inbox, the API and a worker. Creates a
# demo token and a demo user on first start and prints how to send a link.
# Ctrl-C stops what this script started.
#
# Ports: API 8080, inbox http://127.0.0.1:1080 (SMTP 1025), worker metrics
# 9091; set API_PORT, INBOX_PORT, SMTP_PORT or WORKER_METRICS_PORT to move
# them. State (secrets, the tokens file, logs, caught mail) lives in .dev/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PASSLINK_ROOT"

API_PORT=${API_PORT:-8080}
SMTP_PORT=${SMTP_PORT:-1025}
INBOX_PORT=${INBOX_PORT:-1080}
WORKER_METRICS_PORT=${WORKER_METRICS_PORT:-9091}
DEV=.dev
mkdir -p "$DEV"

for port in "$API_PORT" "$SMTP_PORT" "$INBOX_PORT" "$WORKER_METRICS_PORT"; do
  port_open "$port" && die "port $port is in use; is Passlink already running?"
done

ensure_redis
ensure_rabbitmq
ensure_node_tools

say "building"
cargo build --quiet --bins

# Secrets are made once and kept, so links from an earlier run still work.
if [ ! -f "$DEV/secrets.env" ]; then
  key() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
  {
    echo "PASSLINK_CODE_HMAC_KEY=$(key)"
    echo "PASSLINK_SEAL_KEYS=dev1:$(key)"
  } > "$DEV/secrets.env"
  chmod 600 "$DEV/secrets.env"
fi
set -a
# shellcheck disable=SC1091
source "$DEV/secrets.env"
PASSLINK_TOKENS_FILE=$DEV/tokens.json
PASSLINK_LISTEN=127.0.0.1:$API_PORT
PASSLINK_PUBLIC_BASE_URL=http://localhost:$API_PORT
PASSLINK_SMTP_HOST=127.0.0.1
PASSLINK_SMTP_PORT=$SMTP_PORT
PASSLINK_MAIL_FROM="Passlink <no-reply@passlink.localhost>"
PASSLINK_WORKER_METRICS_LISTEN=127.0.0.1:$WORKER_METRICS_PORT
set +a

if [ ! -f "$DEV/demo-token" ]; then
  target/debug/passlink-api token create --subject demo-backend --org '*' \
    --permission user.passkey.write --permission user.write --file "$DEV/tokens.json" \
    > "$DEV/demo-token" 2>/dev/null
  chmod 600 "$DEV/demo-token"
fi
TOKEN=$(cat "$DEV/demo-token")

pids=()
cleanup() {
  trap - EXIT INT TERM
  say "stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
on_signal() { cleanup; exit 0; }
trap cleanup EXIT
trap on_signal INT TERM

say "starting maildev (inbox http://127.0.0.1:$INBOX_PORT)"
mkdir -p "$DEV/mail"
node tools/node_modules/maildev/bin/maildev --ip 127.0.0.1 --smtp "$SMTP_PORT" \
  --web "$INBOX_PORT" --mail-directory "$DEV/mail" --silent > "$DEV/maildev.log" 2>&1 &
pids+=($!)
wait_port "$SMTP_PORT" 30 maildev

say "starting the API on http://127.0.0.1:$API_PORT"
target/debug/passlink-api > "$DEV/api.log" 2>&1 &
pids+=($!)
wait_port "$API_PORT" 60 passlink-api

say "starting a worker"
target/debug/passlink-worker > "$DEV/worker.log" 2>&1 &
pids+=($!)

curl -sf -X PUT "http://127.0.0.1:$API_PORT/admin/v1/users/demo-user" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"organizationId":"demo-org","email":"ada@example.test","displayName":"Ada Lovelace","preferredLanguage":"en"}' \
  > /dev/null || die "could not create the demo user; see $DEV/api.log"

cat <<MSG

Passlink is running. Logs: $DEV/api.log, $DEV/worker.log

  Demo token:  $TOKEN
  Demo user:   demo-user (ada@example.test, organization demo-org)

Send a registration link by email:

  curl -s -X POST http://127.0.0.1:$API_PORT/v3alpha/users/demo-user/webauthn/registration_link \\
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{"sendLink":{}}'

Read the email at http://127.0.0.1:$INBOX_PORT and open its link in a browser
to register a passkey. Then see it in the directory:

  curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$API_PORT/admin/v1/users/demo-user

Press Ctrl-C to stop.
MSG

wait -n "${pids[@]}" || true
say "a process stopped; see the logs in $DEV"

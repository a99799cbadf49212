# Shared helpers for Passlink's scripts: make sure the services the project
# needs are up, starting them when they are not. Sourced, not run.

PASSLINK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 seconds=$2 name=$3
  for _ in $(seq 1 $((seconds * 10))); do
    port_open "$port" && return 0
    sleep 0.1
  done
  die "$name did not open port $port within ${seconds}s"
}

# Redis on 127.0.0.1:6379, started without persistence when missing.
ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
  say "starting Redis on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "Redis did not start"
}

# RabbitMQ on 127.0.0.1:5672: the node is started when it is down, and its
# application when a test or an operator left it stopped.
ensure_rabbitmq() {
  if port_open 5672; then return 0; fi
  command -v rabbitmqctl >/dev/null || die "RabbitMQ is not installed (apt-get install rabbitmq-server)"
  if rabbitmqctl -q status >/dev/null 2>&1; then
    say "starting the RabbitMQ application"
    rabbitmqctl -q start_app >/dev/null
  else
    say "starting RabbitMQ"
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_port 5672 90 RabbitMQ
  rabbitmqctl -q await_startup >/dev/null 2>&1 || true
}

# The pinned Node.js tools (the maildev SMTP catcher, the SMTP sink, the
# gRPC-web client's Connect libraries, playwright-core for the browser test).
ensure_node_tools() {
  command -v node >/dev/null || die "Node.js is not installed (apt-get install nodejs npm)"
  local tools="$PASSLINK_ROOT/tools"
  if [ ! -x "$tools/node_modules/.bin/maildev" ] \
     || [ ! -d "$tools/node_modules/@connectrpc/connect-node" ] \
     || [ ! -f "$tools/node_modules/playwright-core/package.json" ] \
     || [ "$tools/package-lock.json" -nt "$tools/node_modules/.package-lock.json" ]; then
    say "installing the pinned Node.js tools"
    npm ci --prefix "$tools" --no-audit --no-fund --loglevel=error >/dev/null
  fi
}

# Debian's Chromium for the end-to-end browser test; playwright-core drives
# it over the DevTools protocol (Playwright's own browser download does not
# work on machines without general internet access).
ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then return 0; fi
  command -v apt-get >/dev/null || die "Chromium is missing; install Debian's chromium package"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  say "installing Chromium (apt-get install chromium)"
  "${sudo[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
  [ -x /usr/bin/chromium ] || die "Chromium did not install"
}

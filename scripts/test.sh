#!/usr/bin/env bash
# Runs every test: formatting, lints, unit tests and the end-to-end tests
# against real Redis, RabbitMQ and SMTP, including the browser test in
# headless Chromium. Starts Redis and RabbitMQ when they are not running and
# installs the pinned SMTP catcher, playwright-core and Debian's Chromium.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -- <filter>     only tests whose name contains <filter>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PASSLINK_ROOT"

filter=()
if [ "${1:-}" = "--" ]; then shift; filter=("$@"); fi

ensure_redis
ensure_rabbitmq
ensure_node_tools
ensure_chromium

say "checking formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

say "building"
cargo build --workspace --bins --quiet

say "running the tests"
PASSLINK_TEST_SKIP_BUILD=1 cargo test --workspace --quiet -- "${filter[@]}"

# A test that stops a service must start it again; make sure anyway.
ensure_rabbitmq
ensure_redis
say "all tests passed"

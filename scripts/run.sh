#!/usr/bin/env bash
# Sets up what is missing, builds Gatehouse, and starts it with the terminal approver.
# Extra arguments go to `gatehouse serve` (e.g. --listen 127.0.0.1:9000, --data-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
say "building gatehouse (release)"
cargo build --release --locked -p gatehouse-cli
say "starting: gatehouse serve --approver terminal $*"
exec target/release/gatehouse serve --approver terminal "$@"

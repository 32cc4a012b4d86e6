#!/usr/bin/env bash
# Sets up what is missing, builds the Gatehouse desktop app (release) and starts it: tray,
# notifications, consent window and the main window, with the server on 127.0.0.1:8737.
# Extra arguments go to `gatehouse-desktop` (e.g. --data-dir DIR, --listen 127.0.0.1:9000, --hidden).
#
# Headless (no display, or for tools): `scripts/run.sh --serve [serve arguments]` starts
# `gatehouse serve --approver terminal` instead, approving in this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
if [ "${1:-}" = "--serve" ]; then
    shift
    say "building gatehouse (release)"
    cargo build --release --locked -p gatehouse-cli
    say "starting: gatehouse serve --approver terminal $*"
    exec target/release/gatehouse serve --approver terminal "$@"
fi
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    say "no display (DISPLAY/WAYLAND_DISPLAY unset): use scripts/run.sh --serve for the headless server"
    exit 1
fi
say "building the UI"
(cd ui && npm run build)
say "building gatehouse-desktop and gatehouse (release)"
cargo build --release --locked -p gatehouse-desktop -p gatehouse-cli
say "starting: gatehouse-desktop $*"
exec target/release/gatehouse-desktop "$@"

#!/usr/bin/env bash
# Measures the release desktop app: launch to `listening`, tray-ready and first window paint; idle
# memory of the app and its WebKit processes (window shown, then closed to the tray); the Activity
# view over 1,000,000 audit events (time to first page, filters, scrolling, frame times).
# Builds the UI and the release binaries, then runs `desktop-figures` in a throwaway headless
# session (scripts/headless.sh: Xvfb, a private D-Bus session bus, an unlocked gnome-keyring).
# docs/desktop-figures.md explains the figures. Arguments go to the tool, e.g.
#
#   scripts/desktop-figures.sh --runs 5
#   scripts/desktop-figures.sh --only activity --activity-dir /tmp/gatehouse-1m   # keep and reuse the 1M data dir
#   scripts/desktop-figures.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${GATEHOUSE_FIGURES_NO_BUILD:-}" != 1 ]; then
    (cd ui && npm run build)
    cargo build --release -p gatehouse-desktop -p gatehouse-cli -p gatehouse-e2e --bin gatehouse-desktop \
        --bin gatehouse --bin desktop-figures
fi
export GATEHOUSE_DESKTOP_BIN="$PWD/target/release/gatehouse-desktop"
export GATEHOUSE_BIN="$PWD/target/release/gatehouse"
exec scripts/headless.sh target/release/desktop-figures "$@"

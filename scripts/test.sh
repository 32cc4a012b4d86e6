#!/usr/bin/env bash
# Sets up what is missing, then runs every check and test: the UI's type check, unit tests and
# build; formatting, clippy, fresh TypeScript bindings; unit and integration tests, the black-box
# tests that drive the real `gatehouse` binary over loopback, and the desktop E2E tests that drive
# the real `gatehouse-desktop` (tray, notifications, windows) in a headless session.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
# The Tauri crate embeds ui/dist at compile time, so the UI is built before anything Rust.
say "UI: npm ci, type check, unit tests, build"
(cd ui && npm ci --no-audit --no-fund && npm run check && npm test && npm run build)
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
say "the committed TypeScript bindings match the Rust types"
cargo test --locked -p gatehouse-desktop export_bindings
if ! git diff --exit-code -- ui/src/lib/bindings || [ -n "$(git ls-files --others --exclude-standard ui/src/lib/bindings)" ]; then
    say "ui/src/lib/bindings is stale: run \`cargo test -p gatehouse-desktop export_bindings\` and commit the result"
    exit 1
fi
say "building the binaries the black-box and desktop tests drive"
cargo build --locked --workspace --bins
say "running every test (headless session: Xvfb, D-Bus, an unlocked throwaway gnome-keyring)"
# scripts/headless.sh: a private session bus, an X display, a gnome-keyring unlocked with a dummy
# password whose files live in a temporary directory (never your own keyring), all stopped at exit.
scripts/headless.sh cargo test --locked --workspace --no-fail-fast
say "all tests passed"

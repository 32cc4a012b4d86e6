#!/usr/bin/env bash
# Sets up what is missing, then runs every check and test: formatting, clippy, unit and
# integration tests, and the black-box tests that drive the real `gatehouse` binary over loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
say "building the binaries the black-box tests drive"
cargo build --locked --workspace --bins
say "running every test (in a headless D-Bus session with an unlocked gnome-keyring)"
# The vault's tests use the real OS keyring: a throwaway gnome-keyring, unlocked with a dummy
# password, whose keyring files live in a temporary directory (never your own keyring).
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT
GATEHOUSE_KEYRING_HOME=$keyring_home dbus-run-session -- bash -c '
    set -euo pipefail
    printf pw | XDG_DATA_HOME="$GATEHOUSE_KEYRING_HOME" gnome-keyring-daemon --unlock --components=secrets >/dev/null
    GATEHOUSE_TEST_KEYRING=1 cargo test --locked --workspace --no-fail-fast
'
say "all tests passed"

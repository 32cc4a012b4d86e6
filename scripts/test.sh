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
say "running every test"
cargo test --locked --workspace --no-fail-fast
say "all tests passed"

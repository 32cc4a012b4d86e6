#!/usr/bin/env bash
# Installs what Gatehouse needs to build and test on Debian/Ubuntu, and nothing that is already there.
# Sourced by run.sh and test.sh; safe to run again.
set -euo pipefail

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        say "need root to run: $*  (run as root or install sudo)"; exit 1
    fi
}

# System packages: a C toolchain for the bundled SQLite, D-Bus headers for the OS keyring (the
# vault's Secret Service backend), and the tools the tests drive (a headless gnome-keyring,
# dbus-run-session, secret-tool).
apt_packages=(build-essential pkg-config ca-certificates curl procps
    libdbus-1-dev dbus dbus-x11 gnome-keyring libsecret-tools)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust: Gatehouse needs a toolchain with edition 2024 (Rust 1.89 or newer).
if ! command -v cargo >/dev/null 2>&1; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
    say "installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    . "$HOME/.cargo/env"
fi
for c in rustfmt clippy; do
    if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
        say "adding the $c component"
        rustup component add "$c"
    fi
done

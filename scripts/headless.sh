#!/usr/bin/env bash
# Runs a command in a throwaway headless desktop session, the one the tests need: a private D-Bus
# session bus (dbus-run-session), an X display (Xvfb on a free display number, DISPLAY exported),
# an unlocked gnome-keyring with a dummy password, and XDG data/config/cache dirs in a temporary
# directory, so nothing touches your own keyring, settings or display. Everything stops at exit.
#
#   scripts/headless.sh cargo test -p gatehouse-e2e --test desktop
#
# Inside the session GATEHOUSE_TEST_KEYRING=1 is set (the real-keyring tests run).
set -euo pipefail

if [ -z "${GATEHOUSE_HEADLESS_HOME:-}" ]; then
    # The MCP tests' Python client lives in the venv setup.sh made in the real cache dir, which
    # the throwaway XDG dirs below would hide.
    export GATEHOUSE_MCP_PYTHON=${GATEHOUSE_MCP_PYTHON:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse/py-mcp/bin/python}
    GATEHOUSE_HEADLESS_HOME=$(mktemp -d)
    export GATEHOUSE_HEADLESS_HOME
    trap 'rm -rf "$GATEHOUSE_HEADLESS_HOME"' EXIT
    status=0
    dbus-run-session -- "$0" "$@" || status=$?
    exit "$status"
fi

# Inside dbus-run-session from here on.
home=$GATEHOUSE_HEADLESS_HOME
export XDG_DATA_HOME=$home/data XDG_CONFIG_HOME=$home/config XDG_CACHE_HOME=$home/cache
mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME"

# Xvfb picks a free display number and writes it to fd 5 once it accepts clients.
Xvfb -displayfd 5 -screen 0 1280x800x24 -nolisten tcp 5>"$home/display" 2>"$home/xvfb.log" &
xvfb_pid=$!
trap 'kill "$xvfb_pid" 2>/dev/null || true; wait "$xvfb_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    [ -s "$home/display" ] && break
    kill -0 "$xvfb_pid" 2>/dev/null || { cat "$home/xvfb.log" >&2; echo "Xvfb did not start" >&2; exit 1; }
    sleep 0.1
done
DISPLAY=:$(tr -d '[:space:]' <"$home/display")
export DISPLAY
for _ in $(seq 100); do
    xdpyinfo -display "$DISPLAY" >/dev/null 2>&1 && break
    sleep 0.1
done
xdpyinfo -display "$DISPLAY" >/dev/null 2>&1 || { echo "the X display $DISPLAY does not answer" >&2; exit 1; }

# The OS keyring of the vault tests: unlocked with a dummy password, its files under $home.
printf pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null
export GATEHOUSE_TEST_KEYRING=1

"$@"

#!/usr/bin/env bash
# Installs the real servers the integration tests run against (Kamailio as registrar/presence/XCAP
# server, SIPp as a scripted registrar) from Debian's packages, only when something is missing.
# Safe to run again: with everything present it changes nothing and needs neither root nor apt.
# It never leaves a Kamailio service running or enabled: the tests start their own instances.
set -euo pipefail

PACKAGES=(
    kamailio kamailio-presence-modules kamailio-sqlite-modules kamailio-tls-modules
    kamailio-xml-modules sip-tester sqlite3 openssl
)

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install_test_deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

fail() {
    echo "install_test_deps: $1" >&2
    echo "install_test_deps: missing Debian packages: ${missing[*]}" >&2
    echo "install_test_deps: install them as root with:" >&2
    echo "    apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || fail "need root to install packages"
command -v apt-get >/dev/null 2>&1 || fail "apt-get not found (not a Debian system?)"

kamailio_was_installed=false
installed kamailio && kamailio_was_installed=true

# The package's maintainer scripts start the service through invoke-rc.d; a policy-rc.d that exits
# 101 forbids that. An existing policy is left alone; ours is removed again on exit.
POLICY=/usr/sbin/policy-rc.d
own_policy=false
cleanup() {
    if $own_policy; then rm -f "$POLICY"; fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# temporary, from tests/install_test_deps.sh: start no services\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    own_policy=true
fi

export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
echo "install_test_deps: installing ${missing[*]}"
apt-get update -q || fail "apt-get update failed"
apt-get install -y -q --no-install-recommends "${missing[@]}" || fail "apt-get install failed"
echo "install_test_deps: installed in $(($(date +%s) - start)) s"

if ! $kamailio_was_installed; then
    # Freshly installed: make sure the system service neither runs now nor starts at boot.
    # 'systemctl disable' also works without a running systemd (it edits the unit links and the
    # SysV rc links); 'stop' needs a running systemd.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable kamailio.service >/dev/null 2>&1 || true
        if [ -d /run/systemd/system ]; then systemctl stop kamailio.service >/dev/null 2>&1 || true; fi
    elif [ -x /etc/init.d/kamailio ] && command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d kamailio disable >/dev/null 2>&1 || true
    fi
    for pidfile in /run/kamailio/kamailio.pid /var/run/kamailio/kamailio.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = kamailio ]; then
            echo "install_test_deps: stopping the kamailio service the package started (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
fi

still_missing=()
for pkg in "${missing[@]}"; do
    installed "$pkg" || still_missing+=("$pkg")
done
if [ "${#still_missing[@]}" -ne 0 ]; then
    missing=("${still_missing[@]}")
    fail "apt-get finished but packages are still not installed"
fi
for tool in kamailio kamcmd sipp sqlite3 openssl; do
    command -v "$tool" >/dev/null 2>&1 || { missing=("(command $tool)"); fail "$tool not on PATH after install"; }
done
echo "install_test_deps: done"

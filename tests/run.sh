#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (as root) and runs it all:
# lint, strict typing, unit and integration tests. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "tests/run.sh: need root to apt-get install $*" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
# The quick start's 'python -m ucma demo' needs a 'python' command.
command -v python >/dev/null 2>&1 || apt_install python-is-python3

# Debian marks its interpreter externally managed (PEP 668); this machine is a test box.
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
python3 -m pip install -q -e '.[test]'

# Real servers for the integration tests (Kamailio, SIPp); fails loudly if they cannot be installed.
bash tests/install_test_deps.sh

python3 -m ruff check .
python3 -m mypy --strict ucma
python3 -m pytest -n auto -p no:cacheprovider tests "$@"

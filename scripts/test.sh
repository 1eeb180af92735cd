#!/usr/bin/env bash
# Set up and run the tests: PostgreSQL on loopback (Debian package), a venv, the package, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
eval "$(bash scripts/services.sh)"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[dev]'
.venv/bin/pytest "$@"

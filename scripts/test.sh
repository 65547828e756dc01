#!/usr/bin/env bash
# Set up (once) and run every test: unit tests of lablib, the autograding tests, and every
# notebook executed under nbval. Extra arguments go to pytest (e.g. -k linear, -x).
# The PyTorch cross-checks run only when the optional extra is installed:
#   LABLIB_EXTRAS=crosscheck bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
export MPLBACKEND="${MPLBACKEND:-Agg}"  # plots render off-screen under test
export LABLIB_PROFILE="${LABLIB_PROFILE:-ci}"  # notebooks train on a small budget under test
exec "$VENV/bin/python" -m pytest --nbval-lax "$@"

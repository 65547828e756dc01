#!/usr/bin/env bash
# Set up (once) and run every test: unit tests of lablib, the autograding tests, and every
# notebook executed under nbval. Extra arguments go to pytest (e.g. -k linear, -x).
# The PyTorch cross-checks and the browser tests run only when their optional extras are installed:
#   LABLIB_EXTRAS=crosscheck,browser bash scripts/test.sh     (browser: also needs /usr/bin/chromium)
# Notebooks run in the `ci` profile, on the Fashion-MNIST sample committed in data/sample/: no
# data package and no network needed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
export MPLBACKEND="${MPLBACKEND:-Agg}"  # plots render off-screen under test
export LABLIB_PROFILE="${LABLIB_PROFILE:-ci}"  # notebooks train on a small budget under test
exec "$VENV/bin/python" -m pytest --nbval-lax "$@"

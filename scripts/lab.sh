#!/usr/bin/env bash
# Set up (once) and start Backprop Lab in JupyterLab.
#   bash scripts/lab.sh            # creates .venv, installs lablib and JupyterLab, opens notebooks/
#   bash scripts/lab.sh --no-browser --ServerApp.port=8890    # extra arguments go to `jupyter lab`
# Set LABLIB_SKIP_INSTALL=1 to start without checking the install (faster, offline).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

flags=()
if [ "$(id -u)" = 0 ]; then
  flags+=(--allow-root)  # JupyterLab refuses to run as root without it (containers, CI)
fi
exec "$VENV/bin/jupyter" lab --ServerApp.root_dir=notebooks "${flags[@]}" "$@"

#!/usr/bin/env bash
# Set up (once) and start Backprop Lab in JupyterLab.
#   bash scripts/lab.sh            # creates .venv, installs lablib and JupyterLab, opens notebooks/
#   bash scripts/lab.sh --instructor   # the same lab rooted at the repository, so that nbgrader's
#                                      # formgrader finds the course (build/course) inside the server's root
#   bash scripts/lab.sh --no-browser --ServerApp.port=8890    # extra arguments go to `jupyter lab`
# Set LABLIB_SKIP_INSTALL=1 to start without checking the install (faster, offline).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

root=notebooks
# The student's lab does not load nbgrader's formgrader: grading is the instructor's, and with the course
# (build/course) outside this server's root formgrader only logs "[E] The course directory root is not a
# subdirectory of the notebook server root". A key given here wins over nbgrader's
# etc/jupyter/jupyter_server_config.d/nbgrader.json, which enables it for every server.
extensions=(--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=False)
if [ "${1:-}" = "--instructor" ]; then
  extensions=()
  shift
  # formgrader refuses a course folder outside the server's root ("The course directory root is not a
  # subdirectory of the notebook server root"); the server runs here, where nbgrader_config.py is read.
  root=$("$VENV/bin/python" -c 'import os; from lablib.grading import paths
print(os.path.commonpath([paths.repo_root(), paths.course_root()]))')
  echo "Instructor lab rooted at $root: open Nbgrader > Formgrader (or /formgrader) to grade written answers." >&2
fi
# JupyterLab's terminals inherit this PATH: `python -m lablib check .` typed there runs this venv's Python.
export PATH="$(cd "$VENV/bin" && pwd):$PATH"
flags=()
if [ "$(id -u)" = 0 ]; then
  flags+=(--allow-root)  # JupyterLab refuses to run as root without it (containers, CI)
fi
exec "$VENV/bin/jupyter" lab --ServerApp.root_dir="$root" "${flags[@]}" "${extensions[@]}" "$@"

# Sourced by lab.sh and test.sh: make sure .venv exists and has lablib installed (editable).
# LABLIB_EXTRAS=crosscheck adds the optional PyTorch cross-check group; LABLIB_SKIP_INSTALL=1 skips pip.
# pip runs only when pyproject.toml or the extras changed since the last install (a stamp in the
# venv records both): lablib is installed editable, so code changes need no reinstall, and the lab
# starts without a network once it is set up.
VENV="${LABLIB_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating the virtual environment $VENV ..." >&2
  python3 -m venv "$VENV" || { echo "python3 -m venv failed: install Python 3.10+ with venv (Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
fi
if [ "${LABLIB_SKIP_INSTALL:-0}" != 1 ]; then
  target="."
  [ -n "${LABLIB_EXTRAS:-}" ] && target=".[${LABLIB_EXTRAS}]"
  stamp="$VENV/.lablib-install"
  wanted="$target $(cksum < pyproject.toml)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "Installing lablib and its dependencies into $VENV (pip install -e '$target') ..." >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$target"
    echo "$wanted" > "$stamp"
  fi
fi

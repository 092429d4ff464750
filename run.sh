#!/usr/bin/env bash
# comfyui-gateway: ./run.sh starts the gateway on http://127.0.0.1:8000 (SQLite in ./data);
# ./run.sh test sets up the same way, then runs the whole test suite. Extra arguments are passed on.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV=".venv"

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[run.sh] creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
}

# Install a requirements file only when it changed since the last install.
install_requirements() {
  local file="$1" stamp="$VENV/.installed-$(basename "$1")"
  local sum
  sum="$(cat requirements*.txt | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
    echo "[run.sh] installing $file"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$file"
    echo "$sum" > "$stamp"
  fi
}

ensure_venv
case "${1:-}" in
  test)
    shift
    install_requirements requirements-dev.txt
    scripts/install_system_deps.sh
    scripts/install_node_deps.sh
    # The newest ComfyUI frontend the editor tests also run (the pinned one is in requirements-dev.txt).
    "$VENV/bin/python" -m tests.fake_comfy.frontends >/dev/null \
      || echo "[run.sh] could not install the newest ComfyUI frontend; its editor test will skip or fail"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    install_requirements requirements.txt
    exec "$VENV/bin/python" -m gateway "$@"
    ;;
esac

#!/usr/bin/env bash
# npm packages the test suite needs: n8n's own expression engine (n8n-workflow, pinned in
# tests/n8n/package-lock.json), with which tests/n8n replays the workflows in docs/n8n/.
# Installs them when the lock file changed since the last install; without npm it says so, and the
# replay tests skip with a reason (or fail under GATEWAY_TEST_REQUIRE_SERVICES=1).
set -uo pipefail
cd "$(dirname "$0")/../tests/n8n"
if ! command -v npm >/dev/null 2>&1; then
  echo "[run.sh] npm is missing (Debian packages nodejs and npm); the n8n workflow replay will not run"
  exit 0
fi
stamp="node_modules/.installed-lock"
sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
  exit 0
fi
echo "[run.sh] installing tests/n8n (npm ci)"
if npm ci --no-audit --no-fund --loglevel=error >/dev/null; then
  echo "$sum" > "$stamp"
else
  echo "[run.sh] npm ci in tests/n8n failed; the n8n workflow replay will not run"
fi
exit 0

#!/usr/bin/env bash
# Debian packages the test suite needs: Chromium (admin page tests), a font with Chinese characters (the
# Chinese screenshots the browser tests write to docs/img), Xvfb (tray test) and Node.js with npm (the n8n
# workflow replay, tests/n8n).
# Installs them when missing and apt-get is usable (root); otherwise says what is missing, and the
# tests that need them skip with a reason (or fail under GATEWAY_TEST_REQUIRE_SERVICES=1).
set -uo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
command -v objdump >/dev/null 2>&1 || missing+=(binutils)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -d /usr/share/fonts/truetype/wqy ] || missing+=(fonts-wqy-microhei)
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "[run.sh] installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || echo "[run.sh] could not install ${missing[*]}; the tests that need them will skip or fail"
else
  echo "[run.sh] missing ${missing[*]} (install them with apt-get as root to run every test)"
fi
exit 0

@echo off
rem comfyui-gateway on Windows: "run.bat" starts the gateway, "run.bat test" runs the tests.
setlocal
cd /d "%~dp0"
if not exist .venv\Scripts\python.exe (
  echo [run.bat] creating .venv
  py -3 -m venv .venv 2>nul || python -m venv .venv
)
if /I "%1"=="test" (
  .venv\Scripts\python -m pip install -q -r requirements-dev.txt || exit /b 1
  rem n8n's expression engine for the replay of docs\n8n (tests\n8n); skipped with a reason without npm
  where npm >nul 2>nul && (pushd tests\n8n & call npm ci --no-audit --no-fund --loglevel=error >nul & popd)
  shift
  .venv\Scripts\python -m pytest %*
  exit /b %ERRORLEVEL%
)
.venv\Scripts\python -m pip install -q -r requirements.txt || exit /b 1
.venv\Scripts\python -m gateway %*

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
  shift
  .venv\Scripts\python -m pytest %*
  exit /b %ERRORLEVEL%
)
.venv\Scripts\python -m pip install -q -r requirements.txt || exit /b 1
.venv\Scripts\python -m gateway %*

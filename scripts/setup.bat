@echo off
rem Creates .venv (Python >= 3.11) and installs the pinned dependencies.
setlocal
cd /d "%~dp0.."
if not exist .venv\Scripts\python.exe (
    py -3 -c "import sys; sys.exit(sys.version_info < (3, 11))" || (echo SuccessDiary needs Python 3.11 or newer. & exit /b 1)
    py -3 -m venv .venv || exit /b 1
)
.venv\Scripts\python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock || exit /b 1
.venv\Scripts\python -m pip check || exit /b 1
.venv\Scripts\python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . || exit /b 1

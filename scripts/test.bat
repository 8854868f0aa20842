@echo off
rem Sets up and runs the test suite; arguments go to pytest.
setlocal
cd /d "%~dp0.."
call scripts\setup.bat || exit /b 1
.venv\Scripts\pytest %*

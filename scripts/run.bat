@echo off
rem Sets up, migrates the database (SQLite db.sqlite3 by default) and serves on http://localhost:8000,
rem with a job worker (mail, reminders, digests, housekeeping) in its own window beside it.
setlocal
cd /d "%~dp0.."
call scripts\setup.bat || exit /b 1
.venv\Scripts\alembic upgrade head || exit /b 1
if "%PORT%"=="" set PORT=8000
start "SuccessDiary worker" .venv\Scripts\python -m app worker
.venv\Scripts\uvicorn --factory app.main:create_app --reload --reload-dir app --reload-dir templates --reload-include *.html --host 127.0.0.1 --port %PORT%

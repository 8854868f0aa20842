"""`python -m app ...` runs the management commands (see app/cli.py)."""

from app.cli import main

main()

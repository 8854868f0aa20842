"""The browser fixtures live in tests/browser/plugin.py, shared with tests/security."""

from tests.browser.plugin import SHOTS

__all__ = ["SHOTS"]  # tests/browser modules import it from here

"""``python -m waitress``: the waitress-serve command."""
import sys

from .runner import run

sys.exit(run())

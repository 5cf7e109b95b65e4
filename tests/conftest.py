"""Shared pytest setup for every test directory.

Makes ``apps`` (test WSGI applications) and ``functional`` (the subprocess-server harness)
importable, and offers ``server_factory`` to any test that wants a real server in a subprocess
(see ``functional/harness.py``). ``tests/functional/conftest.py`` defines the same fixture so
the functional tests also work when pytest's rootdir is below this directory.
"""

import os
import signal
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from functional.harness import ServerFactory  # noqa: E402

# Servers under test start as from a terminal or a service manager: with SIGHUP at its default.
# A test run started under nohup ignores SIGHUP, every server it starts would inherit that, and
# a server leaves an ignored signal alone (docs/tls.md, docs/deployment.md), so the SIGHUP tests
# would see nothing happen.
if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.fixture(scope="session")
def server_factory():
    factory = ServerFactory()
    yield factory
    factory.stop_all()

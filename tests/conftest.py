"""Shared pytest setup for every test directory.

Makes ``apps`` (test WSGI applications) and ``functional`` (the subprocess-server harness)
importable, and offers ``server_factory`` to any test that wants a real server in a subprocess
(see ``functional/harness.py``). ``tests/functional/conftest.py`` defines the same fixture so
the functional tests also work when pytest's rootdir is below this directory.
"""

import os
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from functional.harness import ServerFactory  # noqa: E402


@pytest.fixture(scope="session")
def server_factory():
    factory = ServerFactory()
    yield factory
    factory.stop_all()

"""pytest plugin for Waitress 3.0.2's own test suite run against this package.

Every test of Waitress's that is expected to fail here is listed in ``EXPECTED_FAILURES``,
with the first cell of the ``docs/differences.md`` row it rests on.  Each listed test is
marked ``xfail(strict=True)``: an unexpected pass fails the run, as does any other failure.
A listed test that is not collected, or a row that is not in ``docs/differences.md``, is a
usage error, so the list cannot drift from the suite or from the documentation.
"""

import os
import re

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DIFFERENCES = os.path.join(HERE, "..", "..", "docs", "differences.md")

# The row of docs/differences.md each group rests on (its "case" cell).
CHUNKED_KEEPALIVE = "HTTP/1.1 response without Content-Length (streamed, chunked)"
STR_BODY = "A `str` body item or `write()` argument"

#: Tests that read the response to EOF: they hang rather than fail here, so they get a short
#: timeout (the connection stays open after a chunked response; that is the difference).
HANGS = {CHUNKED_KEEPALIVE}

EXPECTED_FAILURES = {}
for transport in ("Tcp", "Unix"):
    EXPECTED_FAILURES.update(
        {
            "tests/test_functional.py::%sNoContentLengthTests::test_http11_generator"
            % transport: CHUNKED_KEEPALIVE,
            "tests/test_functional.py::%sNoContentLengthTests::test_http11_listlentwo"
            % transport: CHUNKED_KEEPALIVE,
            "tests/test_functional.py::%sFileWrapperTests::test_notfilelike_nocl_http11"
            % transport: CHUNKED_KEEPALIVE,
            "tests/test_functional.py::%sInternalServerErrorTests::test_after_write_cb"
            % transport: STR_BODY,
            "tests/test_functional.py::%sInternalServerErrorTests::test_in_generator"
            % transport: STR_BODY,
        }
    )

HANG_TIMEOUT = 3


def _documented_cases():
    with open(DIFFERENCES, encoding="utf-8") as f:
        return {m.group(1).strip() for m in re.finditer(r"^\|([^|]+)\|", f.read(), re.M)}


def pytest_configure(config):
    import waitress

    # The package under test, not a Waitress that happens to be importable.
    try:
        import waitress._native  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a broken install
        raise pytest.UsageError("waitress at %s is not this package: %s" % (waitress.__file__, exc))
    documented = _documented_cases()
    missing = sorted({row for row in EXPECTED_FAILURES.values() if row not in documented})
    if missing:
        raise pytest.UsageError("rows not in docs/differences.md: %s" % missing)


def pytest_collection_modifyitems(session, config, items):
    collected = {item.nodeid for item in items}
    stale = sorted(set(EXPECTED_FAILURES) - collected)
    if stale and not config.getoption("keyword") and not config.getoption("markexpr"):
        raise pytest.UsageError("expected failures that were not collected: %s" % stale)
    for item in items:
        row = EXPECTED_FAILURES.get(item.nodeid)
        if row is None:
            continue
        item.add_marker(pytest.mark.xfail(strict=True, reason="docs/differences.md: " + row))
        if row in HANGS:
            item.add_marker(pytest.mark.timeout(HANG_TIMEOUT))


def pytest_report_header(config):
    import waitress

    return "waitress under test: %s (%d expected failures listed)" % (
        os.path.dirname(waitress.__file__),
        len(EXPECTED_FAILURES),
    )

"""``loop_scheduling``: the event loop thread runs under SCHED_BATCH unless told otherwise, and
only that thread (docs/deployment.md, "The event loop's scheduling")."""

import os
import sys

import pytest

from functional.harness import assert_serves

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux scheduling policies")


def _policies(pid):
    """Thread name -> the set of scheduling policies of the threads with that name."""
    policies = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            name = f.read().strip()
        policies.setdefault(name, set()).add(os.sched_getscheduler(int(tid)))
    return policies


# What the server process starts with: the policy of this process, which it inherits.
INHERITED = os.sched_getscheduler(0)


@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, os.SCHED_BATCH),
        ({"loop_scheduling": "normal"}, INHERITED),
        # The app runs on the loop thread: its policy is left alone.
        ({"dispatch": "inline"}, INHERITED),
    ],
    ids=["default", "normal", "inline"],
)
def test_event_loop_thread_policy(private_server, options, expected):
    server = private_server(**options)
    assert_serves(server)
    policies = _policies(server.proc.pid)
    loops = [name for name in policies if name.startswith("NIO-ELT")]
    assert loops, policies
    assert all(policies[name] == {expected} for name in loops), policies
    # The app's threads (workers, the main thread) keep the inherited policy.
    assert all(p == {INHERITED} for name, p in policies.items() if not name.startswith("NIO-ELT")), policies

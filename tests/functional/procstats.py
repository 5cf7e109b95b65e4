"""What a server process holds, read from /proc: resident memory and open descriptors, and a
bounded wait for a condition. Shared by the tests that check nothing grows or leaks."""

import os
import time


def vm_rss(pid):
    """Resident set size of ``pid`` in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def fd_count(pid):
    """Open file descriptors of ``pid``."""
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_until(predicate, timeout, step=0.05):
    """Polls ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True

"""What a slow reader costs in temporary files stays bounded (docs/behaviour.md,
"Reliability").

An endless stream is read at a steady rate well below what the app produces, with
``outbuf_high_watermark`` 2 MiB and ``outbuf_overflow`` 256 KiB. The app waits at the
watermark; the server's spill files (found through /proc/PID/fd, where unlinked files show
as "(deleted)") must stay near the watermark plus one rotation of the file, at every rate,
instead of growing with everything sent so far; and they are gone once the client leaves.
"""

import os
import socket
import time

import pytest

from functional.harness import build_request

APP = "apps.output_app:app"
WATERMARK = 2 * 1024 * 1024
OVERFLOW = 256 * 1024
# Pending output (the watermark, plus one item past it) and the sent part of the oldest file
# (a quarter of the watermark): 2.6 MiB measured; the bound leaves room for timing.
SPILL_BOUND = 4 * 1024 * 1024
SECONDS = 5.0


def spill_files(pid):
    """(total size, count) of the server's open temporary files."""
    total = count = 0
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        path = os.path.join(d, name)
        try:
            if "waitress-body-" in os.readlink(path):
                total += os.stat(path).st_size
                count += 1
        except OSError:
            pass  # closed meanwhile
    return total, count


@pytest.fixture(scope="module")
def spill_server(server_factory):
    s = server_factory.start(APP, outbuf_high_watermark=WATERMARK, outbuf_overflow=OVERFLOW)
    yield s
    s.stop()


@pytest.mark.parametrize("rate_mb", [2, 6])
def test_slow_reader_spill_stays_bounded(spill_server, rate_mb):
    s = spill_server
    pid = s.proc.pid
    rate = rate_mb * 1000 * 1000
    sock = socket.create_connection(s.address, timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    samples = []
    try:
        sock.sendall(build_request("GET", "/endless?id=slow%d&piece=65536" % rate_mb))
        start = time.monotonic()
        received = 0
        next_sample = start
        while time.monotonic() - start < SECONDS:
            due = rate * (time.monotonic() - start)
            if received < due:
                data = sock.recv(min(65536, int(due - received) + 1))
                assert data, "server closed the stream after %d bytes" % received
                received += len(data)
            else:
                time.sleep(0.005)
            if time.monotonic() >= next_sample:
                samples.append(spill_files(pid))
                next_sample += 0.2
        largest = max(samples)
        print(
            "\n%d MB/s for %.0f s: %.1f MB read; spill files at most %.2f MiB (%d files)"
            % (rate_mb, SECONDS, received / 1e6, largest[0] / 2**20, largest[1])
        )
        # The stream did spill (the test measures something) and stayed bounded although far
        # more than the bound went through it.
        assert largest[0] > OVERFLOW
        assert received > 2 * SPILL_BOUND
        assert largest[0] < SPILL_BOUND, "spill files reached %d bytes" % largest[0]
    finally:
        sock.close()
    deadline = time.monotonic() + 10
    while spill_files(pid)[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spill_files(pid) == (0, 0)
    s.wait_for_events("slow%d" % rate_mb, lambda ev: any("close" in e for e in ev))
    assert s.get("/hello").status == 200

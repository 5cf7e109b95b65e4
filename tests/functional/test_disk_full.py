"""A temporary file that cannot be written is a server condition (docs/behaviour.md,
"Reliability").

The server runs with TMPDIR on a 2 MiB tmpfs. An upload past ``inbuf_overflow`` that does not
fit gets ``503 Service Unavailable`` (not a 400: the client did nothing wrong) and an error log
line naming the directory. A response past ``outbuf_overflow`` whose spill file fills the disk
keeps the rest in memory (bounded by the ``outbuf_high_watermark`` wait) and goes out whole.
After each, the server serves the next request, spilled uploads included, once space is free.

Mounting needs root (or a user namespace); the tests skip with the reason otherwise.
"""

import hashlib
import subprocess
import time

import pytest

from apps.output_app import big_pieces
from functional.harness import assert_serves, build_request

TMPFS_SIZE = "2m"


@pytest.fixture
def full_tmpdir(tmp_path, monkeypatch):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=" + TMPFS_SIZE, "tmpfs", str(mnt)],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip("cannot mount a tmpfs: %s" % e)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % done.stderr.strip())
    # The server subprocess inherits the environment at start.
    monkeypatch.setenv("TMPDIR", str(mnt))
    try:
        yield str(mnt)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)


def test_upload_that_cannot_spill_gets_503(full_tmpdir, private_server):
    s = private_server("apps.wsgi_app:app")
    mark = s.log_mark()
    body = b"b" * (5 * 1024 * 1024)
    with s.connect() as c:
        sender = c.send_in_background(build_request("POST", "/digest", body=body))
        resp = c.read_response("POST")
        sender.join(10)
    assert resp.status == 503, resp
    assert resp.reason == "Service Unavailable"
    assert b"the request body could not be stored" in resp.body
    assert resp.wants_close
    log = s.wait_for_log("could not write a request body", mark)
    assert (
        "could not write a request body to a temporary file in %s (No space left on device)"
        % full_tmpdir in log
    ), log
    # The failed body's file is gone: an upload that fits on the disk spills and is served.
    assert_serves(s)
    small = b"s" * (1024 * 1024)
    resp = s.request("POST", "/digest", body=small)
    assert resp.status == 200, resp
    assert resp.json()["sha256"] == hashlib.sha256(small).hexdigest()
    assert "Traceback" not in s.log_text()


def test_response_that_cannot_spill_is_sent_whole(full_tmpdir, private_server):
    s = private_server("apps.output_app:app")
    size = 8 * 1024 * 1024
    mark = s.log_mark()
    with s.connect() as c:
        c.send(build_request("GET", "/big?size=%d&cl=1" % size))
        # Read nothing for a while: the app produces the whole body (below the 16 MiB
        # watermark), past outbuf_overflow and past what the disk holds.
        log = s.wait_for_log("could not write response output", mark)
        resp = c.read_response()
    assert resp.status == 200
    assert len(resp.body) == size
    expected = hashlib.sha256()
    for piece in big_pieces(size, 256 * 1024):
        expected.update(piece)
    assert hashlib.sha256(resp.body).hexdigest() == expected.hexdigest()
    assert (
        "could not write response output to a temporary file in %s (No space left on device)"
        % full_tmpdir in log
    ), log
    assert_serves(s)
    # Space was given back when the response ended: the next one spills again and is whole.
    with s.connect() as c:
        c.send(build_request("GET", "/big?size=%d&cl=1" % (1536 * 1024)))
        time.sleep(0.5)
        assert len(c.read_response().body) == 1536 * 1024
    assert "Traceback" not in s.log_text()

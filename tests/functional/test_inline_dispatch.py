"""dispatch=inline: the app runs on the event loop thread (docs/deployment.md, "Inline
dispatch"). Everything a client sees is as with worker threads; what differs is that no
other connection is served while the app runs, and output is never waited on (it would be
the loop waiting for itself): past outbuf_overflow it goes to the spill file."""
import socket
import threading
import time

from functional.harness import Connection, build_request


def test_requests_bodies_keepalive_and_pipelining(private_server):
    srv = private_server("apps.wsgi_app:app", dispatch="inline")
    # The app runs on the loop thread, named for Python's threading.
    assert srv.get("/thread").body == b"waitress-inline"
    body = bytes(range(256)) * 400
    with srv.connect() as conn:
        conn.send(build_request("POST", "/echo", body=body))
        echoed = conn.read_response()
        assert (echoed.status, echoed.body) == (200, body)
        # Pipelined: three requests in one write, answered in order.
        conn.send(b"".join(build_request("GET", "/uri?n=%d" % i) for i in range(3)))
        assert [conn.read_response().body for _ in range(3)] == [b"/uri?n=0", b"/uri?n=1", b"/uri?n=2"]
    # A streamed (chunked) response and an app error page.
    streamed = srv.get("/chunks?n=5&size=3")
    assert streamed.header("Transfer-Encoding") == "chunked"
    assert streamed.body == b"".join(b"%d:xxx;" % i for i in range(5))
    assert srv.get("/error").status == 500
    assert srv.get("/uri?after").body == b"/uri?after"


def test_large_output_to_a_reader_that_does_not_read_never_stalls_the_loop(private_server):
    # 24 MiB streamed to a client that reads nothing yet: past outbuf_high_watermark
    # (4 MiB here) a worker would wait for the client; on the loop nothing may wait, so
    # the output goes to the spill file and the loop goes on serving others.
    srv = private_server("apps.wsgi_app:app", dispatch="inline", outbuf_high_watermark=4 << 20)
    size, n = 65536, 384
    slow = Connection(socket.create_connection((srv.host, srv.port), timeout=30))
    try:
        slow.send(build_request("GET", "/chunks?n=%d&size=%d" % (n, size)))
        time.sleep(0.5)
        started = time.monotonic()
        assert srv.get("/uri?other").body == b"/uri?other"
        served_in = time.monotonic() - started
        resp = slow.read_response(deadline=time.monotonic() + 60)
    finally:
        slow.close()
    assert resp.status == 200
    assert len(resp.body) == n * (size + len(b"000:;")) - sum(3 - len(str(i)) for i in range(n))
    assert resp.body.startswith(b"0:") and resp.body.endswith(b"x;")
    assert served_in < 10, served_in
    assert srv.get("/uri?after").status == 200


def test_a_blocking_app_holds_every_connection(private_server):
    # The documented cost of inline dispatch: while the app sleeps, a second client waits.
    srv = private_server("apps.wsgi_app:app", dispatch="inline")
    done = {}

    def fetch(name, target, delay):
        time.sleep(delay)
        srv.get(target)
        done[name] = time.monotonic()

    started = time.monotonic()
    clients = [threading.Thread(target=fetch, args=("sleep", "/sleep?ms=800", 0)),
               threading.Thread(target=fetch, args=("quick", "/uri?quick", 0.2))]
    for t in clients:
        t.start()
    for t in clients:
        t.join(15)
    assert set(done) == {"sleep", "quick"}
    # The quick request could only be read once the sleeping one was done.
    assert done["quick"] - started >= 0.75, done

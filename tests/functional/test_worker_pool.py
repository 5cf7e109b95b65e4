"""The worker pool: a CPU-bound app runs on one worker, but an app that
blocks (sleeps, waits on I/O) still gets all ``threads`` workers."""
import threading
import time


def test_blocking_requests_run_concurrently(private_server):
    srv = private_server("apps.wsgi_app:app", threads=4)
    results = []

    def one():
        results.append(srv.get("/sleep?ms=500").status)

    started = time.monotonic()
    clients = [threading.Thread(target=one) for _ in range(4)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(10)
    elapsed = time.monotonic() - started
    assert results == [200] * 4
    # One at a time would take 2 s; four workers take about 0.5 s.
    assert elapsed < 1.6, elapsed
    # The server still serves afterwards.
    assert srv.get("/sleep?ms=1").status == 200


def test_more_blocking_requests_than_threads_queue_and_all_finish(private_server):
    srv = private_server("apps.wsgi_app:app", threads=2)
    results = []

    def one():
        results.append(srv.get("/sleep?ms=300").status)

    clients = [threading.Thread(target=one) for _ in range(5)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(10)
    assert results == [200] * 5

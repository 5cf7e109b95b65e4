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


def test_a_finished_response_is_not_held_while_its_worker_runs_the_next_task(private_server):
    # One worker: the first request keeps it busy while a fast request and a slow one
    # queue behind it, in that order. The worker then runs both back to back; the fast
    # response must reach its client as soon as it is done, not once the slow request
    # (1.5 s of sleep) is over too.
    srv = private_server("apps.wsgi_app:app", threads=1)
    done = {}

    def fetch(name, target, delay):
        time.sleep(delay)
        resp = srv.get(target)
        done[name] = (time.monotonic(), resp.status, resp.body)

    clients = [
        threading.Thread(target=fetch, args=("busy", "/sleep?ms=400", 0)),
        threading.Thread(target=fetch, args=("fast", "/uri?fast", 0.15)),
        threading.Thread(target=fetch, args=("slow", "/sleep?ms=1500", 0.3)),
    ]
    for t in clients:
        t.start()
    for t in clients:
        t.join(15)
    assert {name: value[1:] for name, value in done.items()} == {
        "busy": (200, b"/sleep?ms=400"),
        "fast": (200, b"/uri?fast"),
        "slow": (200, b"/sleep?ms=1500"),
    }
    # Held back, "fast" would arrive with "slow", 1.5 s after it was served.
    assert done["slow"][0] - done["fast"][0] > 1.0, done
    assert srv.get("/uri?after").status == 200

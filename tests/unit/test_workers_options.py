"""The worker-process options (supervisor.py): defaults, coercion of ini and command-line
strings, clear errors, the runner's choice of where the app is imported, and that only a
supervised configuration reaches the supervisor."""
import os
import sys
import textwrap

import pytest

import waitress.supervisor
from waitress import runner
from waitress.adjustments import Adjustments
from waitress.server import create_server
from waitress.supervisor import AppImport, WorkersFailed


def hello(environ, start_response):
    start_response("200 OK", [])
    return [b"hi"]


def test_defaults_are_one_process():
    adj = Adjustments()
    assert (adj.workers, adj.preload, adj.max_requests, adj.max_requests_jitter) == (1, False, 0, 0)
    assert adj.worker_timeout == 30
    assert adj.supervised is False


def test_ini_strings_are_coerced():
    adj = Adjustments(
        workers="3", preload="true", max_requests="100", max_requests_jitter="7", worker_timeout="5"
    )
    assert (adj.workers, adj.preload, adj.max_requests) == (3, True, 100)
    assert (adj.max_requests_jitter, adj.worker_timeout) == (7, 5)
    assert adj.supervised is True
    # max_requests or max_worker_rss alone supervise one worker, so it can be replaced.
    assert Adjustments(max_requests=10).supervised is True
    assert Adjustments(max_worker_rss="300").max_worker_rss == 300
    assert Adjustments(max_worker_rss=300).supervised is True


@pytest.mark.parametrize(
    "option, value",
    [
        ("workers", 0),
        ("workers", -2),
        ("max_requests", -1),
        ("max_requests_jitter", -1),
        ("worker_timeout", -1),
        ("max_worker_rss", -1),
    ],
)
def test_out_of_range_values_name_the_option(option, value):
    with pytest.raises(ValueError, match=option):
        Adjustments(**{option: value})


def test_not_a_number_is_a_value_error():
    with pytest.raises(ValueError):
        Adjustments(workers="two")


def test_without_fork_workers_are_a_clear_error(monkeypatch):
    monkeypatch.delattr(os, "fork")
    with pytest.raises(ValueError, match="os.fork"):
        Adjustments(workers=2)
    # One process needs no fork.
    assert Adjustments(workers=1).workers == 1


def test_command_line_flags():
    kw, args = Adjustments.parse_args(
        ["--workers=4", "--preload", "--max-requests=9", "--max-requests-jitter=2", "--worker-timeout=0", "m:a"]
    )
    assert args == ["m:a"]
    adj = Adjustments(**{k: v for k, v in kw.items() if k not in ("help", "call")})
    assert (adj.workers, adj.preload, adj.max_requests, adj.max_requests_jitter, adj.worker_timeout) == (
        4, True, 9, 2, 0
    )
    kw, _ = Adjustments.parse_args(["--no-preload", "m:a"])
    assert kw["preload"] == "false"


def test_help_describes_the_worker_options():
    for flag in ("--workers=INT", "--[no-]preload", "--max-requests=INT", "--max-requests-jitter=INT", "--worker-timeout=INT", "--max-worker-rss=INT"):
        assert flag in runner.HELP


@pytest.fixture
def app_module(tmp_path, monkeypatch):
    name = "workers_fixture_app"
    (tmp_path / (name + ".py")).write_text(
        textwrap.dedent(
            """
            IMPORTED = True
            def app(environ, start_response):
                return []
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    sys.modules.pop(name, None)
    yield name
    sys.modules.pop(name, None)


def test_runner_leaves_the_import_to_the_workers(app_module):
    served = []
    assert runner.run(["waitress-serve", "--workers=2", app_module + ":app"], lambda app, **kw: served.append((app, kw))) == 0
    app, kw = served[0]
    assert isinstance(app, AppImport) and app.spec == app_module + ":app" and not app.call
    assert kw["workers"] == "2"
    # The supervisor never imported it; a worker does.
    assert app_module not in sys.modules
    assert app.load()([], None) == []


def test_runner_imports_in_the_parent_with_preload_or_one_worker(app_module):
    for argv in (["--workers=2", "--preload"], ["--workers=1"], []):
        served = []
        runner.run(["waitress-serve"] + argv + [app_module + ":app"], lambda app, **kw: served.append(app))
        assert callable(served[0]) and not isinstance(served[0], AppImport), argv
        assert sys.modules[app_module].IMPORTED


def test_runner_exits_1_when_the_supervisor_gives_up(app_module):
    def fails(app, **kw):
        raise WorkersFailed("every worker exited before serving")

    assert runner.run(["waitress-serve", "--workers=2", app_module + ":app"], fails) == 1


def test_app_import_is_not_an_application():
    with pytest.raises(RuntimeError, match="loaded in each worker"):
        AppImport("x:y")({}, None)


def test_only_a_supervised_server_reaches_the_supervisor(monkeypatch):
    calls = []
    monkeypatch.setattr(waitress.supervisor, "supervise", lambda app, m, adj, close: calls.append(adj.workers) or close())
    server = create_server(hello, listen="127.0.0.1:0", workers=2)
    server.run()
    assert calls == [2]
    assert server.socket is None  # closed when the supervisor returns
    multi = create_server(hello, listen="127.0.0.1:0 127.0.0.1:0", workers=3)
    multi.run()
    assert calls == [2, 3]


def test_a_supervised_server_needs_the_main_thread():
    import threading

    server = create_server(hello, listen="127.0.0.1:0", workers=2)
    errors = []

    def run():
        try:
            server.run()
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert errors and "main thread" in errors[0]
    assert server.socket is None

import itertools
import logging
import subprocess
import sys
import textwrap

import pytest

from waitress import runner
from waitress.adjustments import Adjustments, asbool
from waitress.utilities import logger

_module_numbers = itertools.count()

APP_SOURCE = textwrap.dedent(
    """
    def app(environ, start_response):
        return []

    def factory():
        return app

    class Holder:
        class Inner:
            @staticmethod
            def wsgi(environ, start_response):
                return []
    """
)


@pytest.fixture
def app_module(tmp_path, monkeypatch):
    """A fresh module in a temporary current directory; returns its name."""
    name = "runner_fixture_app_%d" % next(_module_numbers)
    (tmp_path / (name + ".py")).write_text(APP_SOURCE)
    monkeypatch.chdir(tmp_path)
    # The runner appends the current directory to sys.path; undo that.
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture(autouse=True)
def keep_logger_level():
    level = logger.level
    yield
    logger.setLevel(level)


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, app, **kw):
        self.calls.append((app, kw))


def run(*argv):
    serve = Recorder()
    status = runner.run(["waitress-serve", *argv], _serve=serve)
    return status, serve.calls


class TestErrors:
    def test_help(self, capsys):
        status, calls = run("--help")
        out = capsys.readouterr().out
        assert status == 0
        assert calls == []
        assert out.startswith("Usage:\n\n    waitress-serve [OPTS] MODULE:OBJECT\n")

    def test_help_lists_every_option(self, capsys):
        run("--help")
        out = capsys.readouterr().out
        for name, convert in Adjustments._params:
            flag = name.replace("_", "-")
            if name in ("sockets", "trusted_proxy", "trusted_proxy_count",
                        "trusted_proxy_headers", "log_untrusted_proxy_headers",
                        "clear_untrusted_proxy_headers", "server_name"):
                continue  # not in Waitress's help either
            if convert is asbool:
                assert f"--[no-]{flag}\n" in out or f"--{flag}\n" in out, flag
            else:
                assert f"--{flag}=" in out, flag

    def test_help_uses_program_name(self, capsys):
        runner.run(["/usr/local/bin/my-serve", "--help"], _serve=Recorder())
        assert "    my-serve [OPTS] MODULE:OBJECT" in capsys.readouterr().out

    @pytest.mark.parametrize(
        "argv, message",
        [
            (["--bad-opt"], "option --bad-opt not recognized"),
            (["--threads"], "option --threads requires argument"),
            (["--ipv4=1"], "option --ipv4 must not have an argument"),
        ],
    )
    def test_bad_option(self, capsys, argv, message):
        status, calls = run(*argv)
        err = capsys.readouterr().err
        assert status == 1
        assert calls == []
        assert err.startswith(f"Error: {message}\n\nUsage:")

    @pytest.mark.parametrize("argv", [[], ["a:a", "b:b"], ["--app=a:a", "b:b"]])
    def test_not_one_application(self, capsys, argv):
        status, _ = run(*argv)
        assert status == 1
        assert capsys.readouterr().err.startswith("Error: Specify one application only")

    def test_missing_module(self, capsys):
        status, calls = run("nonexistent_module_xyz:app")
        err = capsys.readouterr().err
        assert status == 1
        assert calls == []
        assert err.startswith("Error: No module named 'nonexistent_module_xyz'\n\nUsage:")
        assert (
            "There was an exception (ModuleNotFoundError) importing your module.\n\n"
            "It had these arguments: \n"
            "1. No module named 'nonexistent_module_xyz'\n"
        ) in err

    def test_missing_attribute(self, capsys, app_module):
        status, _ = run(f"{app_module}:nope")
        err = capsys.readouterr().err
        assert status == 1
        assert err.startswith(f"Error: module '{app_module}' has no attribute 'nope'")
        assert "There was an exception (AttributeError) importing your module." in err

    def test_module_that_fails_to_import(self, capsys, tmp_path, monkeypatch):
        (tmp_path / "broken_fixture_mod.py").write_text("raise ImportError('My reason')\n")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "path", list(sys.path))
        try:
            status, _ = run("broken_fixture_mod:app")
        finally:
            sys.modules.pop("broken_fixture_mod", None)
        err = capsys.readouterr().err
        assert status == 1
        assert "There was an exception (ImportError) importing your module." in err
        assert "1. My reason" in err

    def test_show_exception_without_arguments(self, capsys):
        try:
            raise ImportError
        except ImportError:
            runner.show_exception(sys.stderr)
        assert capsys.readouterr().err == (
            "There was an exception (ImportError) importing your module.\n\n"
            "It had no arguments.\n"
        )


class TestServing:
    def test_app_from_current_directory(self, app_module):
        status, calls = run(f"{app_module}:app")
        assert status == 0
        (app, kw), = calls
        assert app is sys.modules[app_module].app
        assert kw == {}

    def test_options_are_passed_as_strings(self, app_module):
        status, calls = run(
            "--port=80", "--no-ipv6", "--expose-tracebacks", f"{app_module}:app"
        )
        assert status == 0
        assert calls[0][1] == {"port": "80", "ipv6": "false", "expose_tracebacks": "true"}

    def test_repeated_listen(self, app_module):
        _, calls = run("--listen=127.0.0.1:1", "--listen=[::1]:2", f"{app_module}:app")
        assert calls[0][1] == {"listen": " 127.0.0.1:1 [::1]:2"}

    def test_call(self, app_module):
        _, calls = run("--call", f"{app_module}:factory")
        assert calls[0][0] is sys.modules[app_module].app

    def test_dotted_attributes(self, app_module):
        _, calls = run(f"{app_module}:Holder.Inner.wsgi")
        assert calls[0][0] is sys.modules[app_module].Holder.Inner.wsgi

    def test_dotted_name_without_colon(self, app_module):
        _, calls = run(f"{app_module}.app")
        assert calls[0][0] is sys.modules[app_module].app

    def test_app_option(self, app_module):
        status, calls = run(f"--app={app_module}:app", "--port=81")
        assert status == 0
        assert calls == [(sys.modules[app_module].app, {"port": "81"})]

    def test_sets_logger_level_when_unset(self, app_module):
        logger.setLevel(logging.NOTSET)
        run(f"{app_module}:app")
        assert logger.level == logging.INFO

    def test_keeps_logger_level_when_set(self, app_module):
        logger.setLevel(logging.ERROR)
        run(f"{app_module}:app")
        assert logger.level == logging.ERROR

    def test_invalid_option_value_is_not_caught(self, app_module):
        # As in Waitress, a value that fails conversion ends in a traceback.
        def serve(app, **kw):
            Adjustments(**kw)

        with pytest.raises(ValueError):
            runner.run(["waitress-serve", "--threads=x", f"{app_module}:app"], _serve=serve)


def test_python_dash_m_exit_status():
    result = subprocess.run(
        [sys.executable, "-m", "waitress", "--bogus"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: option --bogus not recognized")

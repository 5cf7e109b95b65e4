import io
import logging
import threading
import time

import waitress
from waitress import demo


class FakeServer:
    def __init__(self, app, **kw):
        self.app = app
        self.kw = kw
        self.printed = []
        self.ran = False

    def print_listen(self, format_str):
        self.printed.append(format_str)

    def run(self):
        self.ran = True


class ServerFactory:
    def __init__(self):
        self.made = []

    def __call__(self, app, **kw):
        server = FakeServer(app, **kw)
        self.made.append(server)
        return server


class TestServe:
    def test_quiet(self, app):
        factory = ServerFactory()
        waitress.serve(app, _server=factory, _quiet=True, port="81")
        server, = factory.made
        assert server.app is app
        assert server.kw == {"port": "81"}
        assert server.printed == []
        assert server.ran

    def test_prints_where_it_listens(self, app):
        factory = ServerFactory()
        waitress.serve(app, _server=factory)
        assert factory.made[0].printed == ["Serving on http://{}:{}"]

    def test_profile(self, app, capsys):
        factory = ServerFactory()
        waitress.serve(app, _server=factory, _quiet=True, _profile=True)
        assert factory.made[0].ran
        assert "function calls" in capsys.readouterr().out

    def test_serves_until_stopped(self, app, fake_native, caplog):
        result = []

        def stop_engine():
            deadline = time.monotonic() + 5
            while not fake_native.instances and time.monotonic() < deadline:
                time.sleep(0.005)
            engine = fake_native.instances[0]
            result.append(engine.listeners)
            engine.stop()

        made = []

        def create_server(app, **kw):
            made.append(waitress.create_server(app, **kw))
            return made[-1]

        threading.Thread(target=stop_engine, daemon=True).start()
        with caplog.at_level(logging.INFO, logger="waitress"):
            waitress.serve(app, _server=create_server, listen="127.0.0.1:0", threads="2")
        made[0].close()
        (listener,) = result[0]
        assert caplog.records[0].getMessage() == f"Serving on http://127.0.0.1:{listener[3]}"
        assert fake_native.instances[0].adj.threads == 2


def test_serve_paste(app):
    factory = ServerFactory()
    status = waitress.serve_paste(
        app, {"__file__": "app.ini"}, _server=factory, _quiet=True, threads="3"
    )
    assert status == 0
    assert factory.made[0].kw == {"threads": "3"}


def test_profile_prints_callers(capsys):
    waitress.profile("sum(range(10))", globals(), {}, ("calls",), True)
    assert "was called by" in capsys.readouterr().out


class TestDemo:
    def call(self, path, method="GET", body=b"", **extra):
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "8080",
            "wsgi.input": io.BytesIO(body),
            **extra,
        }
        started = []
        chunks = list(demo.app(environ, lambda s, h: started.append((s, dict(h)))))
        (status, headers), = started
        return status, headers, chunks

    def test_environ_page(self):
        status, headers, chunks = self.call("/", HTTP_HOST="example.org:81", HTTP_X_TEST="<b>")
        page = b"".join(chunks)
        assert status == "200 OK"
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["Content-Length"] == str(len(page))
        assert b"HTTP_X_TEST" in page
        assert b"&lt;b&gt;" in page and b"<b>" not in page
        assert b"http://example.org:81/echo" in page

    def test_stream(self, monkeypatch):
        monkeypatch.setattr(demo.time, "sleep", lambda seconds: None)
        status, headers, chunks = self.call("/stream")
        assert status == "200 OK"
        assert "Content-Length" not in headers
        assert len(chunks) == 5

    def test_echo(self):
        status, headers, chunks = self.call(
            "/echo", "POST", b"hello", CONTENT_TYPE="text/plain"
        )
        assert (status, headers["Content-Type"], chunks) == ("200 OK", "text/plain", [b"hello"])

    def test_echo_wants_post(self):
        status, headers, _ = self.call("/echo")
        assert status.startswith("405")
        assert headers["Allow"] == "POST"

    def test_not_found(self):
        assert self.call("/nope")[0] == "404 Not Found"

"""The WSGI environ: PEP 3333 keys plus Waitress's extras, with Waitress's values.

The app (``/environ``) reports each key as [type name, value]. PATH_INFO is percent-decoded
and then decoded as latin-1 (PEP 3333's "bytes as latin-1" rule); QUERY_STRING and REQUEST_URI
stay raw. Header fields become HTTP_* (repeats joined with ", "); fields whose names contain
"_" are dropped, so they cannot be confused with "-" spelled differently.
"""

import pytest

from functional.harness import build_request

BASE_KEYS = {
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REQUEST_URI",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REMOTE_PORT",
    "wsgi.version",
    "wsgi.url_scheme",
    "wsgi.input",
    "wsgi.errors",
    "wsgi.multithread",
    "wsgi.multiprocess",
    "wsgi.run_once",
    "wsgi.file_wrapper",
    "wsgi.input_terminated",
    "waitress.client_disconnected",
}


def environ_of(server, method, target, headers=(), body=b"", version="1.1"):
    """(environ, probes, client port) for one request on a fresh connection."""
    with server.connect() as conn:
        local = conn.sock.getsockname()
        conn.send(build_request(method, target, headers, body, version))
        resp = conn.read_response(method)
    assert resp.status == 200, resp
    data = resp.json()
    port = local[1] if isinstance(local, tuple) else None
    return data["environ"], data["probes"], port


def test_complete_environ_for_a_post(server):
    body = b"a=1&b=2"
    env, probes, client_port = environ_of(
        server,
        "POST",
        "/environ/a%20b%C3%A9%2Fc?x=1&y=%20z&x=2",
        [
            ("Host", "example.com:8080"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Repeated", "one"),
            ("X-Repeated", "two"),
            ("X-Repeated", "three"),
            ("X_Underscore", "dropped"),
            ("X-Dash-Name", "kept"),
            ("Accept", "  padded value\t"),
            ("User-Agent", "caf\xe9"),
        ],
        body,
    )
    # Exactly Waitress's keys: nothing missing, nothing extra (such as os.environ copies).
    assert set(k for k in env if not k.startswith("HTTP_")) == BASE_KEYS | {
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
    }
    assert env["REQUEST_METHOD"] == ["str", "POST"]
    assert env["SCRIPT_NAME"] == ["str", ""]
    assert env["PATH_INFO"] == ["str", "/environ/a b\xc3\xa9/c"]
    assert env["QUERY_STRING"] == ["str", "x=1&y=%20z&x=2"]
    assert env["REQUEST_URI"] == ["str", "/environ/a%20b%C3%A9%2Fc?x=1&y=%20z&x=2"]
    assert env["CONTENT_TYPE"] == ["str", "application/x-www-form-urlencoded"]
    assert env["CONTENT_LENGTH"] == ["str", str(len(body))]
    assert env["SERVER_NAME"] == ["str", "waitress.invalid"]
    assert env["SERVER_PROTOCOL"] == ["str", "HTTP/1.1"]
    assert env["SERVER_SOFTWARE"] == ["str", "waitress"]
    assert env["HTTP_HOST"] == ["str", "example.com:8080"]
    assert env["HTTP_X_REPEATED"] == ["str", "one, two, three"]
    assert env["HTTP_X_DASH_NAME"] == ["str", "kept"]
    assert env["HTTP_ACCEPT"] == ["str", "padded value"]
    assert env["HTTP_USER_AGENT"] == ["str", "caf\xe9"]
    assert "HTTP_X_UNDERSCORE" not in env
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env
    assert probes["body"] == body.decode("latin-1")

    if server.transport == "tcp":
        assert env["SERVER_PORT"] == ["str", str(server.port)]
        assert env["REMOTE_ADDR"] == ["str", "127.0.0.1"]
        assert env["REMOTE_HOST"] == ["str", "127.0.0.1"]
        assert env["REMOTE_PORT"] == ["str", str(client_port)]
    else:
        assert env["SERVER_PORT"] == ["str", server.unix_path]
        assert env["REMOTE_ADDR"] == ["str", "localhost"]
        assert env["REMOTE_HOST"] == ["str", "localhost"]
        assert env["REMOTE_PORT"] == ["str", "None"]

    # wsgi.* keys: types and values.
    assert env["wsgi.version"] == ["tuple", [1, 0]]
    assert env["wsgi.url_scheme"] == ["str", "http"]
    assert env["wsgi.multithread"] == ["bool", True]
    assert env["wsgi.multiprocess"] == ["bool", False]
    assert env["wsgi.run_once"] == ["bool", False]
    assert env["wsgi.input_terminated"] == ["bool", True]
    assert probes["input_methods"] == ["read", "readline", "readlines", "__iter__"]
    assert probes["errors_methods"] == ["write", "writelines", "flush"]
    assert probes["file_wrapper_callable"] is True
    assert probes["client_disconnected"] is False


def test_environ_for_get_without_body(server):
    env, probes, _ = environ_of(server, "GET", "/environ/plain")
    assert set(k for k in env if not k.startswith("HTTP_")) == BASE_KEYS
    assert env["QUERY_STRING"] == ["str", ""]
    assert env["REQUEST_URI"] == ["str", "/environ/plain"]
    assert env["PATH_INFO"] == ["str", "/environ/plain"]
    assert probes["body"] == ""


def test_environ_http10(server):
    env, _, _ = environ_of(server, "GET", "/environ/x?q", version="1.0")
    assert env["SERVER_PROTOCOL"] == ["str", "HTTP/1.0"]
    assert env["QUERY_STRING"] == ["str", "q"]
    assert "HTTP_HOST" not in env


def test_environ_chunked_request_has_content_length_and_no_transfer_encoding(server):
    wire = b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    env, probes, _ = environ_of(server, "PUT", "/environ/x", [("Transfer-Encoding", "chunked")], wire)
    assert env["REQUEST_METHOD"] == ["str", "PUT"]
    assert env["CONTENT_LENGTH"] == ["str", "7"]
    assert "HTTP_TRANSFER_ENCODING" not in env
    assert probes["body"] == "abcdefg"


@pytest.mark.parametrize(
    "target,path,query",
    [
        ("//environ//double", "//environ//double", ""),
        ("/environ/%7Euser/%25percent", "/environ/~user/%percent", ""),
        ("/environ/x?", "/environ/x", ""),
        ("/environ/x?a=b?c", "/environ/x", "a=b?c"),
        ("/environ/caf%E9", "/environ/caf\xe9", ""),
        ("/environ/%00nul", "/environ/\x00nul", ""),
    ],
)
def test_path_info_and_query_string(server, target, path, query):
    env, _, _ = environ_of(server, "GET", target)
    assert env["PATH_INFO"] == ["str", path]
    assert env["QUERY_STRING"] == ["str", query]


@pytest.mark.parametrize(
    "target,path",
    [("///environ/a", "///environ/a"), ("//environ", "//environ"), ("/%2F/environ", "///environ"),
     ("http://example.com//environ/b", "//environ/b")],
)
def test_leading_slashes_are_kept(server, target, path):
    # RFC 9112 §3.2.1: the path is the absolute-path as sent; Waitress collapses it to "/environ/a".
    env, _, _ = environ_of(server, "GET", target)
    assert env["PATH_INFO"] == ["str", path]
    assert env["REQUEST_URI"] == ["str", target]


def test_url_prefix_matches_the_path_as_sent(server_factory, transport):
    s = server_factory.get(transport=transport, url_prefix="/app")
    env, _, _ = environ_of(s, "GET", "/app//environ/x")
    assert env["SCRIPT_NAME"] == ["str", "/app"]
    assert env["PATH_INFO"] == ["str", "//environ/x"]


def test_absolute_form_request_target(server):
    env, _, _ = environ_of(server, "GET", "http://example.com/environ/abs?q=1")
    assert env["PATH_INFO"] == ["str", "/environ/abs"]
    assert env["QUERY_STRING"] == ["str", "q=1"]
    assert env["REQUEST_URI"] == ["str", "http://example.com/environ/abs?q=1"]


@pytest.mark.parametrize("method", ["DELETE", "OPTIONS", "PATCH", "PROPFIND"])
def test_request_method_passed_through(server, method):
    env, _, _ = environ_of(server, method, "/environ/m")
    assert env["REQUEST_METHOD"] == ["str", method]


def test_url_prefix_sets_script_name(server_factory, transport):
    s = server_factory.get(transport=transport, url_prefix="/app")
    env, _, _ = environ_of(s, "GET", "/app/environ/x?y=1")
    assert env["SCRIPT_NAME"] == ["str", "/app"]
    assert env["PATH_INFO"] == ["str", "/environ/x"]
    assert env["REQUEST_URI"] == ["str", "/app/environ/x?y=1"]


def test_server_name_and_url_scheme_options(server_factory, transport):
    s = server_factory.get(transport=transport, server_name="svc.example", url_scheme="https")
    env, _, _ = environ_of(s, "GET", "/environ/x")
    assert env["SERVER_NAME"] == ["str", "svc.example"]
    assert env["wsgi.url_scheme"] == ["str", "https"]


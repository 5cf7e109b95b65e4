"""HTTPS (``ssl_*`` options; docs/tls.md) against real server subprocesses.

Certificates are made at test time with trustme. Clients: Python's ssl module (raw bytes over
TLS, so framing is checked strictly), requests, curl and ``openssl s_client``. Covered: TLS 1.2
and 1.3 and the environ they give (mod_ssl's variable names), TLS 1.0/1.1 refused, ALPN, client
certificates required / optional / not asked for, a 16 MiB ``wsgi.file_wrapper`` file and
spilled output read in pieces over TLS, a 5 MiB upload, keep-alive and pipelining, a handshake
that never completes closed by ``channel_timeout``, plain HTTP to the TLS port, Unix sockets
left plain, each start-up error (one line naming the file, exit 1), and certificate reloading
(SIGHUP and a bad file). Each limit or error is followed by a request that must succeed.
"""

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings

import pytest

from functional.harness import Connection, build_request

pytest.importorskip("trustme")

from functional.tls_harness import (  # noqa: E402, F401 (fixtures)
    Certificates, certs, other_certs, tls_connection, tls_socket)

BIN_DIR = os.path.dirname(sys.executable)
TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def environ_over(server, context, target="/environ"):
    """The app's environ (values only) and the client's view of the TLS session."""
    with tls_connection(server, context) as conn:
        conn.send(build_request("GET", target))
        response = conn.read_response("GET")
        session = {"version": conn.sock.version(), "cipher": conn.sock.cipher()[0]}
    assert response.status == 200
    environ = {key: value[1] for key, value in response.json()["environ"].items()}
    return environ, session


def get_ok(server, certs, target="/hello"):
    with tls_connection(server, certs.client_context()) as conn:
        conn.send(build_request("GET", target))
        response = conn.read_response("GET")
    assert response.status == 200, response
    return response


# -- protocol versions, the environ, ALPN -----------------------------------------------------


def test_tls13_suite_ticket_and_resumption(private_server, certs):
    """The server's TLS 1.3 order (docs/tls.md, "Cost of a new connection"): AES-128-GCM for a
    client that lists AES first (OpenSSL's default lists AES-256 first), ChaCha20 for one that
    lists ChaCha20 first; one session ticket, with which the next connection resumes (and
    gets a new one), request after request."""
    server = private_server(**certs.options())
    context = certs.client_context(ssl.TLSVersion.TLSv1_3)
    session = None
    for attempt in range(3):
        with tls_socket(server, context, session=session) as sock:
            sock.sendall(build_request("GET", "/hello"))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            assert sock.cipher()[0] == "TLS_AES_128_GCM_SHA256"
            assert sock.session_reused == (attempt > 0)
            session = sock.session
    chacha = subprocess.run(
        ["openssl", "s_client", "-connect", f"{server.host}:{server.port}", "-tls1_3", "-ign_eof",
         "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"],
        input=b"GET /hello HTTP/1.0\r\n\r\n", capture_output=True, timeout=30).stdout.decode()
    assert "Cipher is TLS_CHACHA20_POLY1305_SHA256" in chacha
    assert chacha.count("New Session Ticket arrived") == 1
    assert get_ok(server, certs).status == 200


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_request_and_environ_over_tls_12_and_13(private_server, certs, version):
    server = private_server(**certs.options())
    environ, session = environ_over(server, certs.client_context(version))
    expected = {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert session["version"] == expected
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTPS"] == "on"
    assert environ["SSL_PROTOCOL"] == expected
    # The cipher the client negotiated, under OpenSSL's name (as mod_ssl gives it).
    assert environ["SSL_CIPHER"] == session["cipher"]
    # No client certificate was asked for.
    assert "SSL_CLIENT_S_DN" not in environ and "SSL_CLIENT_CERT" not in environ
    assert environ["SERVER_PORT"] == str(server.port)


def test_min_version_13_refuses_12(private_server, certs):
    server = private_server(**certs.options(ssl_min_version="TLSv1.3"))
    with pytest.raises(ssl.SSLError):
        tls_socket(server, certs.client_context(ssl.TLSVersion.TLSv1_2)).close()
    environ, session = environ_over(server, certs.client_context())
    assert environ["SSL_PROTOCOL"] == session["version"] == "TLSv1.3"


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_10_and_11_are_refused(private_server, certs, version):
    server = private_server(**certs.options())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        context.set_ciphers("DEFAULT@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # old versions, on purpose
            context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, version)
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot offer %s" % version)
    with pytest.raises(ssl.SSLError) as info:
        tls_socket(server, context).close()
    if info.value.reason == "NO_PROTOCOLS_AVAILABLE":
        pytest.skip("this OpenSSL will not offer %s" % version)
    # The server answered with a protocol_version alert: it refused, not the client.
    assert info.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", info.value
    get_ok(server, certs)
    assert "Socket error" not in server.log_text()


def test_alpn_selects_http11(private_server, certs):
    server = private_server(**certs.options())
    context = certs.client_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with tls_socket(server, context) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"


def test_requests_and_curl(private_server, certs):
    import requests

    server = private_server(**certs.options())
    url = "https://127.0.0.1:%d" % server.port
    response = requests.get(url + "/hello", verify=certs.ca_file, timeout=10)
    assert response.status_code == 200 and response.text == "Hello, world!"
    # An unverifiable server certificate is the client's error, as it should be.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/hello", timeout=10)
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    out = subprocess.run(
        ["curl", "-sS", "-v", "--cacert", certs.ca_file, url + "/hello"],
        capture_output=True, text=True, timeout=20,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Hello, world!"
    assert "ALPN: server accepted http/1.1" in out.stderr or "ALPN, server accepted to use http/1.1" in out.stderr


def test_openssl_s_client(private_server, certs):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    server = private_server(**certs.options())
    request = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    out = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.port, "-CAfile", certs.ca_file,
         "-alpn", "http/1.1", "-quiet", "-verify_return_error"],
        input=request, capture_output=True, timeout=20,
    )
    assert out.stdout.startswith(b"HTTP/1.1 200 OK\r\n"), out
    assert out.stdout.endswith(b"Hello, world!")


@pytest.mark.parametrize("ciphers", ["ECDHE+AESGCM:!AES256:!aNULL", "HIGH:!AES256:!CHACHA20:!MD5:!SHA1"])
def test_openssl_cipher_strings(private_server, certs, ciphers):
    # OpenSSL's cipher-string syntax, as gunicorn's --ciphers takes it: here both leave
    # TLS 1.2 clients AES-128-GCM with ECDHE.
    server = private_server(**certs.options(ssl_ciphers=ciphers))
    context = certs.client_context(ssl.TLSVersion.TLSv1_2)
    environ, session = environ_over(server, context)
    assert session["cipher"] == environ["SSL_CIPHER"] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    # A TLS 1.2 client offering only suites the string leaves out is refused.
    only_256 = certs.client_context(ssl.TLSVersion.TLSv1_2)
    only_256.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
    with pytest.raises(ssl.SSLError):
        tls_socket(server, only_256).close()
    # TLS 1.3 is not affected.
    _, session = environ_over(server, certs.client_context())
    assert session["version"] == "TLSv1.3"
    assert "Socket error" not in server.log_text()


# -- client certificates ----------------------------------------------------------------------


def test_client_certificate_required(private_server, certs, other_certs):
    server = private_server(**certs.options(ssl_ca_certs=certs.ca_file, ssl_verify="required"))
    # Without a certificate: the handshake (or, in TLS 1.3, the first read) fails.
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, AssertionError)):
        environ_over(server, certs.client_context())
    # One from another CA: refused too.
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, AssertionError)):
        environ_over(server, certs.client_context(certificate=other_certs.client))
    environ, _ = environ_over(server, certs.client_context(certificate=certs.client))
    assert environ["SSL_CLIENT_S_DN"].startswith("CN=alice,")
    assert environ["SSL_CLIENT_CERT"] == certs.client_pem
    assert "Socket error" not in server.log_text()


def test_client_certificate_optional(private_server, certs, other_certs):
    server = private_server(**certs.options(ssl_ca_certs=certs.ca_file, ssl_verify="optional"))
    environ, _ = environ_over(server, certs.client_context())
    assert "SSL_CLIENT_S_DN" not in environ
    environ, _ = environ_over(server, certs.client_context(certificate=certs.client))
    assert environ["SSL_CLIENT_S_DN"].startswith("CN=alice,")
    assert ssl.PEM_cert_to_DER_cert(environ["SSL_CLIENT_CERT"]) == ssl.PEM_cert_to_DER_cert(certs.client_pem)
    # Presented, it must verify.
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, AssertionError)):
        environ_over(server, certs.client_context(certificate=other_certs.client))
    get_ok(server, certs)


def test_client_certificate_not_asked_for(private_server, certs):
    server = private_server(**certs.options())
    environ, _ = environ_over(server, certs.client_context(certificate=certs.client))
    assert "SSL_CLIENT_S_DN" not in environ and "SSL_CLIENT_CERT" not in environ


def test_each_client_certificate_has_its_own_environ_past_the_template_limit(private_server, certs, tmp_path):
    # The SSL_* variables go into an environ template per distinct set, at most 32 of them
    # (WSGIApplication.secureTemplateLimit); past that they are set per request. 34 clients
    # with certificates of their own, two keep-alive requests each, then the first again.
    server = private_server(**certs.options(ssl_ca_certs=certs.ca_file, ssl_verify="optional"))
    clients = []
    for i in range(34):
        issued = certs.ca.issue_cert(f"client{i}@example.com", common_name=f"client{i}")
        path = str(tmp_path / f"client{i}.pem")
        issued.private_key_and_cert_chain_pem.write_to_path(path)
        clients.append((f"CN=client{i},", issued.cert_chain_pems[0].bytes().decode(), path))
    for dn, pem, path in clients + clients[:1]:
        with tls_connection(server, certs.client_context(certificate=path)) as conn:
            for _ in range(2):
                conn.send(build_request("GET", "/environ"))
                response = conn.read_response("GET")
                assert response.status == 200
                environ = {key: value[1] for key, value in response.json()["environ"].items()}
                assert environ["SSL_CLIENT_S_DN"].startswith(dn)
                assert environ["SSL_CLIENT_CERT"] == pem
                assert environ["SSL_PROTOCOL"] == "TLSv1.3" and environ["HTTPS"] == "on"
    environ, _ = environ_over(server, certs.client_context())
    assert "SSL_CLIENT_S_DN" not in environ and environ["SSL_PROTOCOL"] == "TLSv1.3"


# -- bodies -----------------------------------------------------------------------------------


def pattern(size):
    block = bytes(i % 251 for i in range(251 * 64))
    return (block * (size // len(block) + 1))[:size]


def test_file_wrapper_16_mib_byte_for_byte(private_server, certs, tmp_path):
    data = os.urandom(16 << 20)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    server = private_server(**certs.options())
    with tls_connection(server, certs.client_context()) as conn:
        for _ in range(2):  # keep-alive: the connection is usable after the file
            conn.send(build_request("GET", "/file?path=%s&cl=%d" % (path, len(data))))
            # A generous bound: 16 MiB through Python's TLS on a shared 2-core machine.
            response = conn.read_response("GET", deadline=time.monotonic() + 120)
            assert response.status == 200
            assert hashlib.sha256(response.body).hexdigest() == hashlib.sha256(data).hexdigest()
        conn.send(build_request("GET", "/hello"))
        assert conn.read_response("GET").body == b"Hello, world!"


def test_spilled_output_over_tls_byte_for_byte(private_server, certs):
    # A small outbuf_overflow makes most of the 8 MiB go through spill files, which a TLS
    # connection reads in pieces; the client waits before reading so that output piles up.
    server = private_server(**certs.options(outbuf_overflow=65536))
    size = 8 << 20
    with tls_connection(server, certs.client_context()) as conn:
        conn.send(build_request("GET", "/filelike?size=%d&id=spill&block=65536" % size))
        time.sleep(0.5)
        response = conn.read_response("GET", deadline=time.monotonic() + 120)
    assert response.status == 200
    assert response.body == bytes(i % 251 for i in range(size))


def test_upload_5_mib_byte_for_byte(private_server, certs):
    import requests

    server = private_server(**certs.options())
    body = os.urandom(5 << 20)
    response = requests.post(
        "https://127.0.0.1:%d/digest" % server.port, data=body, verify=certs.ca_file, timeout=30)
    assert response.status_code == 200
    assert response.json()["length"] == len(body)
    assert response.json()["sha256"] == hashlib.sha256(body).hexdigest()
    # Chunked, too.
    response = requests.post(
        "https://127.0.0.1:%d/echo" % server.port, data=iter([body[:1000], body[1000:70000]]),
        verify=certs.ca_file, timeout=30)
    assert response.content == body[:70000]


def test_keep_alive_pipelining_and_100_continue(private_server, certs):
    server = private_server(**certs.options())
    with tls_connection(server, certs.client_context()) as conn:
        conn.send(b"".join(build_request("GET", "/uri/%d" % i) for i in range(5)))
        for i in range(5):
            response = conn.read_response("GET")
            assert response.status == 200
            assert response.body == b"/uri/%d" % i
        conn.send(build_request("POST", "/echo", [("Expect", "100-continue"), ("Content-Length", "5")]))
        assert conn.read_response("POST").status == 100
        conn.send(b"hello")
        response = conn.read_response("POST")
        assert response.status == 200 and response.body == b"hello"


def test_close_without_close_notify_is_a_quiet_disconnect(private_server, certs):
    # Python's ssl closes without close_notify (a ragged EOF). After the handshake the TLS
    # layer's own handlers have left the pipeline (TLSSessionReporter), so it is
    # ConnectionHandler that must take it for a disconnect: no "Socket error" line, also with
    # a request half sent or a second response not read.
    server = private_server(**certs.options())
    for half in (b"", b"GET /hello HTTP/1.1\r\nHo", build_request("GET", "/hello")):
        for _ in range(3):
            with tls_connection(server, certs.client_context()) as conn:
                conn.send(build_request("GET", "/hello"))
                assert conn.read_response("GET").status == 200
                if half:
                    conn.send(half)
    get_ok(server, certs)
    assert "Socket error" not in server.log_text()


# -- timeouts and strangers -------------------------------------------------------------------


def test_handshake_never_completed_is_closed_by_channel_timeout(private_server, certs):
    server = private_server(**certs.options(channel_timeout=1, cleanup_interval=1))
    stalled = socket.create_connection((server.host, server.port), timeout=30)
    half_hello = socket.create_connection((server.host, server.port), timeout=30)
    # The first bytes of a ClientHello record, and never the rest.
    half_hello.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    for sock in (stalled, half_hello):
        with sock:
            assert sock.recv(100) == b""  # closed by the server (the timeout is generous)
    get_ok(server, certs)


def test_plain_http_to_tls_port_gets_400(private_server, certs):
    server = private_server(**certs.options())
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        conn = Connection(sock)
        data = conn.read_until_close()
    assert data.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert b"HTTPS" in data
    # Garbage that is neither TLS nor HTTP: closed without a page.
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"\x00\x01\x02garbage")
        assert Connection(sock).read_until_close() == b""
    get_ok(server, certs)
    assert "Socket error" not in server.log_text()


def test_unix_socket_stays_plain(private_server, certs):
    server = private_server(transport="unix", **certs.options())
    response = server.get("/environ")
    environ = {key: value[1] for key, value in response.json()["environ"].items()}
    assert environ["wsgi.url_scheme"] == "http"
    assert "HTTPS" not in environ


# -- start-up errors --------------------------------------------------------------------------


def serve_cli(*options, timeout=30):
    return subprocess.run(
        [os.path.join(BIN_DIR, "waitress-serve"), "--listen=127.0.0.1:0", *options, "apps.wsgi_app:app"],
        cwd=TESTS_DIR, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def start_up_errors(certs, tmp):
    missing = os.path.join(tmp, "missing.pem")
    garbage = os.path.join(tmp, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("not a PEM file\n")
    encrypted = os.path.join(tmp, "encrypted-key.pem")
    from cryptography.hazmat.primitives import serialization

    with open(certs.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    with open(encrypted, "wb") as f:
        f.write(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"right")))
    other = Certificates(tmp, "mismatch")
    chain = "--ssl-certfile=" + certs.chain
    return {
        "missing certificate": ([f"--ssl-certfile={missing}"], missing, None),
        "not a certificate": ([f"--ssl-certfile={garbage}", f"--ssl-keyfile={certs.key}"], garbage, None),
        "missing key": ([chain, f"--ssl-keyfile={missing}"], missing, None),
        "not a key": ([chain, f"--ssl-keyfile={garbage}"], garbage, None),
        "key mismatch": ([chain, f"--ssl-keyfile={other.key}"], other.key, "does not match"),
        "no password": ([chain, f"--ssl-keyfile={encrypted}"], encrypted, "encrypted"),
        "wrong password": (
            [chain, f"--ssl-keyfile={encrypted}", "--ssl-keyfile-password=wrong"], encrypted, "password"),
        "missing ca": (
            [chain, f"--ssl-keyfile={certs.key}", f"--ssl-ca-certs={missing}", "--ssl-verify=required"],
            missing, None),
        "unknown cipher": (
            [chain, f"--ssl-keyfile={certs.key}", "--ssl-ciphers=NOT-A-CIPHER"], "NOT-A-CIPHER", "selects no"),
        "cipher string selecting nothing": (
            [chain, f"--ssl-keyfile={certs.key}", "--ssl-ciphers=ECDHE+AESGCM:!ECDHE"], "ECDHE+AESGCM:!ECDHE",
            "selects no"),
        "malformed cipher string": (
            [chain, f"--ssl-keyfile={certs.key}", "--ssl-ciphers=HIGH:@NOPE"], "HIGH:@NOPE",
            "not an OpenSSL cipher string"),
    }, encrypted


def test_start_up_errors_are_one_line_naming_the_file(certs, tmp_path):
    pytest.importorskip("cryptography")
    cases, encrypted = start_up_errors(certs, str(tmp_path))
    for name, (options, named, words) in cases.items():
        out = serve_cli(*options)
        assert out.returncode == 1, (name, out)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, (name, out.stderr)
        assert lines[0].startswith("waitress-serve: error: "), (name, lines)
        assert named in lines[0], (name, lines)
        if words:
            assert words in lines[0], (name, lines)
        assert "Traceback" not in out.stderr


def test_encrypted_key_with_its_password_serves(private_server, certs, tmp_path):
    pytest.importorskip("cryptography")
    _, encrypted = start_up_errors(certs, str(tmp_path))
    server = private_server(**certs.options(ssl_keyfile=encrypted, ssl_keyfile_password="right"))
    get_ok(server, certs)


def test_options_without_a_certificate_are_refused():
    from waitress.adjustments import Adjustments

    for options in ({"ssl_keyfile": "k.pem"}, {"ssl_verify": "required"}, {"ssl_ca_certs": "ca.pem"}):
        with pytest.raises(ValueError):
            Adjustments(**options)
    with pytest.raises(ValueError):
        Adjustments(ssl_certfile="c.pem", ssl_verify="sometimes")
    with pytest.raises(ValueError):
        Adjustments(ssl_certfile="c.pem", ssl_verify="required")  # no ssl_ca_certs
    with pytest.raises(ValueError):
        Adjustments(ssl_certfile="c.pem", ssl_min_version="TLSv1.1")


# -- reloading --------------------------------------------------------------------------------


def peer_certificate(server, context):
    with tls_socket(server, context) as sock:
        return sock.getpeercert(binary_form=True)


def test_sighup_reloads_certificates_and_keeps_them_on_a_bad_file(private_server, certs, other_certs, tmp_path):
    chain, key = str(tmp_path / "chain.pem"), str(tmp_path / "key.pem")
    shutil.copy(certs.chain, chain)
    shutil.copy(certs.key, key)
    server = private_server(ssl_certfile=chain, ssl_keyfile=key)
    assert peer_certificate(server, certs.client_context()) == certs.leaf_der
    # An established keep-alive connection, kept across the reload.
    established = tls_connection(server, certs.client_context())
    established.send(build_request("GET", "/hello"))
    assert established.read_response("GET").status == 200

    shutil.copy(other_certs.chain, chain)
    shutil.copy(other_certs.key, key)
    mark = server.log_mark()
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_log("Reloaded TLS certificates", mark)
    assert peer_certificate(server, other_certs.client_context()) == other_certs.leaf_der
    established.send(build_request("GET", "/hello"))
    assert established.read_response("GET").status == 200

    # A bad key: logged, and the certificate in use stays.
    with open(key, "w") as f:
        f.write("broken\n")
    mark = server.log_mark()
    server.proc.send_signal(signal.SIGHUP)
    log = server.wait_for_log("Reloading TLS certificates failed", mark)
    assert key in log
    assert peer_certificate(server, other_certs.client_context()) == other_certs.leaf_der
    established.send(build_request("GET", "/hello"))
    assert established.read_response("GET").status == 200
    established.close()
    assert server.alive()

"""The server behind a real nginx (Debian's package), over TCP and over a Unix socket.

nginx runs in the foreground as a subprocess with a generated config
(``nginx_proxy.conf.in``) whose pid file, logs and temp paths all live in a temp dir; it
listens on a free 127.0.0.1 port and sets X-Forwarded-For ($proxy_add_x_forwarded_for),
X-Forwarded-Proto, X-Forwarded-Host and Host. Three upstreams:

* ``/count1/``: our server on TCP, ``trusted_proxy="127.0.0.1"``, count 1;
* ``/count2/``: the same with ``trusted_proxy_count=2`` (the client's own X-Forwarded-For
  hop is trusted too);
* ``/unix/`` and ``/unix-direct/``: our server on a Unix socket, ``trusted_proxy="localhost"``
  (Waitress's peer address for Unix-socket connections).

Requests go through nginx with ``requests``; the application (``apps.env_echo``) reports the
environ it saw. If nginx is missing, the fixture installs it with apt-get (CI runs as root);
the tests are skipped, with the reason, only when that is impossible.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

requests = pytest.importorskip("requests")

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "nginx_proxy.conf.in")
APP = "apps.env_echo:app"
TRUSTED = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
TIMEOUT = 10


def _find_nginx():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def _apt(args, timeout):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", RUNLEVEL="1")  # RUNLEVEL: don't start the service
    try:
        out = subprocess.run(["apt-get"] + args, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return out.returncode == 0, (out.stdout + out.stderr)[-2000:]


def ensure_nginx():
    """The nginx binary; installs Debian's nginx if missing. (path, None) or (None, reason)."""
    path = _find_nginx()
    if path:
        return path, None
    if os.geteuid() != 0:
        return None, "nginx is not installed and installing it needs root (apt-get install nginx-light)"
    if not shutil.which("apt-get"):
        return None, "nginx is not installed and there is no apt-get to install it"
    log = []
    for update_first in (False, True):
        if update_first:
            ok, out = _apt(["update"], 300)
            log.append("apt-get update: %s" % out)
        for package in ("nginx-light", "nginx"):
            ok, out = _apt(["install", "-y", "--no-install-recommends", package], 600)
            log.append("apt-get install %s: %s" % (package, out))
            path = _find_nginx()
            if path:
                return path, None
    return None, "could not install nginx:\n" + "\n".join(log)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, binary, workdir, upstreams):
        self.binary = binary
        self.dir = workdir
        self.port = free_port()
        os.makedirs(os.path.join(workdir, "tmp"), exist_ok=True)
        with open(TEMPLATE) as f:
            conf = f.read()
        fields = dict(upstreams, DIR=workdir, PORT=str(self.port),
                      USER="user root;" if os.geteuid() == 0 else "")
        for key, value in fields.items():
            conf = conf.replace("@%s@" % key, value)
        assert "@" not in conf, conf
        self.conf = os.path.join(workdir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = None

    def command(self, *extra):
        return [self.binary, "-p", self.dir + "/", "-e", os.path.join(self.dir, "error.log"),
                "-c", self.conf] + list(extra)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def start(self):
        check = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=10)
        if check.returncode != 0:
            raise RuntimeError("nginx -t failed:\n%s" % check.stderr)
        self.proc = subprocess.Popen(self.command("-g", "daemon off;"), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited with %s:\n%s\n%s" % (
                    self.proc.returncode, self.proc.stderr.read().decode(errors="replace"), self.error_log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not listen within %.0fs:\n%s" % (START_TIMEOUT, self.error_log()))

    def stop(self):
        """SIGQUIT (graceful), then SIGTERM, then SIGKILL; each wait bounded."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                continue
        if self.proc.stderr:
            self.proc.stderr.close()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)


@pytest.fixture(scope="module")
def nginx_binary():
    path, problem = ensure_nginx()
    if path is None:
        pytest.skip(problem)
    return path


@pytest.fixture(scope="module")
def backends(server_factory):
    tcp1 = server_factory.get(APP, "tcp", trusted_proxy="127.0.0.1", trusted_proxy_headers=TRUSTED,
                              log_untrusted_proxy_headers=True)
    tcp2 = server_factory.get(APP, "tcp", trusted_proxy="127.0.0.1", trusted_proxy_count=2,
                              trusted_proxy_headers=TRUSTED)
    unix = server_factory.get(APP, "unix", trusted_proxy="localhost", trusted_proxy_headers=TRUSTED,
                              log_untrusted_proxy_headers=True)
    return {"count1": tcp1, "count2": tcp2, "unix": unix}


@pytest.fixture(scope="module")
def nginx(nginx_binary, backends):
    workdir = tempfile.mkdtemp(prefix="ngx-")
    # nginx workers (root here, as configured) must reach the Unix socket.
    proxy = Nginx(nginx_binary, workdir, {
        "TCP1": "127.0.0.1:%d" % backends["count1"].port,
        "TCP2": "127.0.0.1:%d" % backends["count2"].port,
        "UNIX": backends["unix"].unix_path,
    })
    try:
        proxy.start()
    except RuntimeError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(str(exc))
    yield proxy
    proxy.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def environ(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text[:500])
    return resp.json()["environ"]


def test_tcp_request_through_nginx(nginx, backends):
    with requests.Session() as http:
        resp = http.get(nginx.url("/count1/some/path?q=1&r=%20x"), timeout=TIMEOUT)
        env = environ(resp)
        assert resp.headers["Server"].startswith("nginx")  # nginx replaces the upstream's
        assert env["PATH_INFO"] == "/count1/some/path"
        assert env["QUERY_STRING"] == "q=1&r=%20x"
        assert env["REQUEST_METHOD"] == "GET"
        # The client (127.0.0.1 as nginx saw it), not nginx's upstream connection.
        assert env["REMOTE_ADDR"] == "127.0.0.1"
        assert env["REMOTE_HOST"] == "127.0.0.1"
        assert env["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
        # X-Forwarded-Host is "$host:$server_port": name and port of nginx, as the client used them.
        assert env["HTTP_HOST"] == "127.0.0.1:%d" % nginx.port
        assert env["SERVER_NAME"] == "127.0.0.1"
        assert env["SERVER_PORT"] == str(nginx.port)
        assert env["wsgi.url_scheme"] == "http"
        assert env["SERVER_PROTOCOL"] == "HTTP/1.1"

        # A body goes through, and the app sees its length.
        payload = b"x=" + b"0123456789" * 5000
        resp = http.post(nginx.url("/count1/upload"), data=payload, timeout=TIMEOUT)
        data = resp.json()
        assert data["body"].encode("latin-1") == payload
        assert data["environ"]["CONTENT_LENGTH"] == str(len(payload))

        # nginx reuses its upstream connections (keepalive): the server serves many
        # requests per connection, all with the right client address.
        ports = set()
        for i in range(8):
            env = environ(http.get(nginx.url("/count1/n%d" % i), timeout=TIMEOUT))
            assert env["PATH_INFO"] == "/count1/n%d" % i
            assert env["REMOTE_ADDR"] == "127.0.0.1"
            ports.add(env["REMOTE_PORT"])
        assert len(ports) < 8, "every request arrived on a new upstream connection: %r" % ports


def test_client_forwarded_for_chain_and_count(nginx):
    spoof = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    # count 1: only nginx's own hop is trusted; the client's claim stays out of REMOTE_ADDR.
    env = environ(requests.get(nginx.url("/count1/chain"), headers=spoof, timeout=TIMEOUT))
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    # nginx overwrote the client's X-Forwarded-Proto with the real scheme.
    assert env["wsgi.url_scheme"] == "http"
    # count 2: the hop before nginx is trusted as well.
    env = environ(requests.get(nginx.url("/count2/chain"), headers=spoof, timeout=TIMEOUT))
    assert env["REMOTE_ADDR"] == "203.0.113.9"
    assert env["REMOTE_HOST"] == "203.0.113.9"
    assert env["HTTP_X_FORWARDED_FOR"] == "203.0.113.9, 127.0.0.1"
    # A longer chain: count 2 keeps the last two hops.
    hdr = {"X-Forwarded-For": "192.0.2.1, 198.51.100.2:4321"}
    env = environ(requests.get(nginx.url("/count2/chain"), headers=hdr, timeout=TIMEOUT))
    assert env["REMOTE_ADDR"] == "198.51.100.2"
    assert env["REMOTE_PORT"] == "4321"
    assert env["HTTP_X_FORWARDED_FOR"] == "198.51.100.2:4321, 127.0.0.1"


def test_untrusted_headers_from_the_client_are_removed_and_logged(nginx, backends):
    server = backends["count1"]
    mark = server.log_mark()
    hdr = {"X-Forwarded-Port": "1234", "Forwarded": "for=192.0.2.66;proto=https", "X-Forwarded-By": "me"}
    env = environ(requests.get(nginx.url("/count1/untrusted"), headers=hdr, timeout=TIMEOUT))
    for key in ("HTTP_X_FORWARDED_PORT", "HTTP_FORWARDED", "HTTP_X_FORWARDED_BY"):
        assert key not in env
    assert env["SERVER_PORT"] == str(nginx.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    log = server.wait_for_log("Removed untrusted headers", mark)
    line = [l for l in log.splitlines() if "Removed untrusted headers" in l]
    assert line, log
    names = line[0].split("(", 1)[1].split(")", 1)[0].split(", ")
    assert sorted(names) == ["Forwarded", "X-Forwarded-By", "X-Forwarded-Port"]


def test_malformed_forwarded_value_through_nginx(nginx):
    # nginx passes a client's X-Forwarded-For through, appended: a bad quote makes it malformed.
    resp = requests.get(nginx.url("/count1/bad"), headers={"X-Forwarded-For": '"unterminated'}, timeout=TIMEOUT)
    assert resp.status_code == 400
    assert resp.text.endswith('Header "X-Forwarded-For" malformed.\r\n\r\n(generated by server)')
    # The upstream connection is still good for the next request.
    env = environ(requests.get(nginx.url("/count1/good"), timeout=TIMEOUT))
    assert env["REMOTE_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize("location", ["unix", "unix-direct"])
def test_unix_socket_behind_nginx(nginx, backends, location):
    server = backends["unix"]
    with requests.Session() as http:
        env = environ(http.get(nginx.url("/%s/path?x=1" % location), headers={"X-Forwarded-For": "203.0.113.9"},
                               timeout=TIMEOUT))
        assert env["PATH_INFO"] == "/%s/path" % location
        assert env["QUERY_STRING"] == "x=1"
        # trusted_proxy="localhost" matches a Unix-socket peer; count 1 takes nginx's hop.
        assert env["REMOTE_ADDR"] == "127.0.0.1"
        assert env["REMOTE_HOST"] == "127.0.0.1"
        assert env["REMOTE_PORT"] == "None"
        assert env["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
        assert env["HTTP_HOST"] == "127.0.0.1:%d" % nginx.port
        assert env["SERVER_NAME"] == "127.0.0.1"
        assert env["SERVER_PORT"] == str(nginx.port)
        assert env["wsgi.url_scheme"] == "http"
        payload = os.urandom(3000).hex().encode()
        data = http.put(nginx.url("/%s/put" % location), data=payload, timeout=TIMEOUT).json()
        assert data["body"].encode() == payload
        assert data["environ"]["REQUEST_METHOD"] == "PUT"
    assert server.alive()

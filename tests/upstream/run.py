"""Run Waitress 3.0.2's own tests against the installed package.

    python tests/upstream/run.py [pytest args...]

Fetches the waitress 3.0.2 sdist from PyPI (once; kept in build/upstream/, checked against
its pinned sha256), unpacks only its ``tests/`` into a fresh directory and runs its
functional tests (TCP and Unix sockets) and public-API modules with the interpreter running
this script, which must have this package installed.  Nothing of Waitress's is stored in the
repository.  The expected failures and the docs/differences.md rows they rest on are in
``upstream_expectations.py``, loaded as a pytest plugin.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

VERSION = "3.0.2"
SHA256 = "682aaaf2af0c44ada4abfb70ded36393f0e307f4ab9456a215ce0020baefc31f"
MODULES = [
    "tests/test_functional.py",
    "tests/test_adjustments.py",
    "tests/test_init.py",
    "tests/test_proxy_headers.py",
    "tests/test_runner.py",
    "tests/test_utilities.py",
]

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(ROOT, "build", "upstream")


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch():
    """The sdist, downloaded by pip (which knows this machine's index or mirror) once."""
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, "waitress-%s.tar.gz" % VERSION)
    if not (os.path.exists(path) and sha256(path) == SHA256):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", "-d", CACHE, "waitress==%s" % VERSION],
            check=True,
        )
    actual = sha256(path)
    if actual != SHA256:
        os.remove(path)
        sys.exit("waitress-%s.tar.gz: sha256 %s, expected %s" % (VERSION, actual, SHA256))
    return path


def unpack_tests(sdist, into):
    prefix = "waitress-%s/tests/" % VERSION
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and (m.isfile() or m.isdir())]
        for member in members:
            member.name = member.name[len("waitress-%s/" % VERSION):]
        # The "data" filter (where this Python has it) refuses links and odd modes.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(into, members=members, **safe)


def main(argv):
    sdist = fetch()
    workdir = tempfile.mkdtemp(prefix="waitress-upstream-", dir=CACHE)
    try:
        unpack_tests(sdist, workdir)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, env.get("PYTHONPATH")]))
        command = [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "upstream_expectations",
            "-o", "addopts=", "--rootdir", workdir, "--timeout", "60", "-q", "-rfEX",
        ] + MODULES + argv
        return subprocess.run(command, cwd=workdir, env=env).returncode
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

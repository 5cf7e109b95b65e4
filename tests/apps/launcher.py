"""Serve one test application in this process; the functional-test harness runs it as a script.

Usage: python launcher.py MODULE:CALLABLE OPTIONS_JSON

OPTIONS_JSON is a JSON object of keyword arguments for ``waitress.create_server``. Once the
listening socket is bound, one line goes to stdout: the TCP port (``server.effective_port``) or
``ready`` for a Unix socket. The harness waits for that line before it connects.

SIGTERM raises SystemExit in the main thread, so ``run()`` ends the way Waitress ends on
SystemExit; the script then prints ``stopped``. Log records (the ``waitress`` logger included)
go to stderr, which the harness captures to a file.
"""

import importlib
import json
import logging
import os
import signal
import sys

# ``apps`` lives next to this file's directory; the harness does not put the repository (or
# its src/ tree) on sys.path, so ``import waitress`` finds the installed package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _on_sigterm(signum, frame):
    sys.exit(0)


def main():
    spec, options_json = sys.argv[1], sys.argv[2]
    logging.basicConfig(level=logging.INFO)
    module_name, _, attr = spec.partition(":")
    app = getattr(importlib.import_module(module_name), attr or "app")
    options = json.loads(options_json)

    import waitress

    server = waitress.create_server(app, **options)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if options.get("unix_socket"):
        print("ready", flush=True)
    else:
        print(server.effective_port, flush=True)
    try:
        server.run()
    finally:
        print("stopped", flush=True)


if __name__ == "__main__":
    main()

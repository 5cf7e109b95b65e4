"""Runs an app under bjoern or fastwsgi, which have no command line of their own.

Usage: python run_c_server.py bjoern|fastwsgi HOST PORT MODULE:APP

Both run the app on their libev/libuv I/O thread in C; Python's own SIGTERM
handler would only run when the app next runs, so SIGTERM is left at its default
(the process ends at once), which is what the harness sends to stop it.
"""
import importlib
import signal
import sys


def main() -> None:
    server, host, port, target = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    module, _, name = target.partition(":")
    app = getattr(importlib.import_module(module), name or "app")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if server == "bjoern":
        import bjoern

        bjoern.run(app, host, port)
    elif server == "fastwsgi":
        import fastwsgi

        fastwsgi.run(wsgi_app=app, host=host, port=port)
    else:
        raise SystemExit(f"unknown server {server!r}")


if __name__ == "__main__":
    main()

"""The default test app wrapped in Paste's TransLogger, whose lines (Apache's combined format)
go to stderr: what the engine's ``access_log_format=combined`` must match byte for byte."""

from paste.translogger import TransLogger

from apps.wsgi_app import app as _app

app = TransLogger(_app, setup_console_handler=True)

"""WSGI applications served by the functional tests, plus the launcher that serves them."""

"""Functional tests: a real server in a subprocess, driven over raw sockets and HTTP clients."""

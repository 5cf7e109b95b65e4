"""Certificates made at test time (trustme; the ``certs`` and ``other_certs`` fixtures) and TLS
client sockets, shared by the HTTPS tests (test_tls.py, test_tls_lifecycle.py)."""

import os
import socket
import ssl

import pytest
import trustme

from functional.harness import Connection


class Certificates:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and their files."""

    def __init__(self, directory, name="server"):
        self.directory = directory
        self.ca = trustme.CA()
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.chain = self.path(name + "-chain.pem")
        with open(self.chain, "wb") as f:
            for blob in server.cert_chain_pems:
                f.write(blob.bytes())
        self.key = self.path(name + "-key.pem")
        server.private_key_pem.write_to_path(self.key)
        self.ca_file = self.path(name + "-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.leaf_der = ssl.PEM_cert_to_DER_cert(server.cert_chain_pems[0].bytes().decode())
        client = self.ca.issue_cert("alice@example.com", common_name="alice")
        self.client = self.path(name + "-client.pem")
        client.private_key_and_cert_chain_pem.write_to_path(self.client)
        self.client_pem = client.cert_chain_pems[0].bytes().decode()

    def path(self, name):
        return os.path.join(self.directory, name)

    def options(self, **extra):
        options = {"ssl_certfile": self.chain, "ssl_keyfile": self.key}
        options.update(extra)
        return options

    def client_context(self, version=None, certificate=None):
        context = ssl.create_default_context(cafile=self.ca_file)
        if version is not None:
            context.minimum_version = context.maximum_version = version
        if certificate is not None:
            context.load_cert_chain(certificate)
        return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certificates(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory):
    """Another CA with its own server and client certificates."""
    return Certificates(str(tmp_path_factory.mktemp("tls-other")), "other")


def tls_socket(server, context, timeout=10.0, **wrap):
    raw = socket.create_connection((server.host, server.port), timeout=timeout)
    return context.wrap_socket(raw, server_hostname="127.0.0.1", **wrap)


def tls_connection(server, context):
    return Connection(tls_socket(server, context))

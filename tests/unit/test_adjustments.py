import re
import socket
import warnings

import pytest

from waitress.adjustments import (
    Adjustments,
    as_socket_list,
    asbool,
    aslist,
    aslist_cronly,
    asoctal,
    slash_fixed_str,
    str_iftruthy,
    to_int,
)


def make(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return Adjustments(**kw)


def bind_pairs(adj):
    return [sockaddr[:2] for (_, _, _, sockaddr) in adj.listen]


# Waitress 3.0.2's documented defaults.
DEFAULTS = {
    "host": "0.0.0.0",
    "port": 8080,
    "ipv4": True,
    "ipv6": True,
    "unix_socket": None,
    "unix_socket_perms": 0o600,
    "sockets": [],
    "threads": 4,
    "trusted_proxy": None,
    "trusted_proxy_count": 1,
    "trusted_proxy_headers": set(),
    "log_untrusted_proxy_headers": False,
    "clear_untrusted_proxy_headers": True,
    "url_scheme": "http",
    "url_prefix": "",
    "ident": "waitress",
    "backlog": 1024,
    "recv_bytes": 8192,
    "send_bytes": 1,
    "outbuf_overflow": 1048576,
    "outbuf_high_watermark": 16777216,
    "inbuf_overflow": 524288,
    "connection_limit": 100,
    "cleanup_interval": 30,
    "channel_timeout": 120,
    "request_head_timeout": 60,
    "log_socket_errors": True,
    "max_request_header_size": 262144,
    "max_request_body_size": 1073741824,
    "expose_tracebacks": False,
    "asyncore_loop_timeout": 1,
    "asyncore_use_poll": False,
    "channel_request_lookahead": 0,
    "server_name": "waitress.invalid",
}
# Worker processes (supervisor.py; tests in test_workers_options.py).
DEFAULTS.update(workers=1, preload=False, max_requests=0, max_requests_jitter=0, worker_timeout=30,
                max_worker_rss=0)
# The engine's access log (docs/access-log.md; not in Waitress).
DEFAULTS.update(access_log=None, access_log_format="combined", metrics_listen=None)
# Where the app runs (docs/deployment.md; not in Waitress): Waitress's thread pool.
DEFAULTS.update(dispatch="threads")
# How the event loop thread is scheduled (docs/deployment.md; not in Waitress).
DEFAULTS.update(loop_scheduling="batch")
# HTTPS (docs/tls.md; not in Waitress): off.
DEFAULTS.update(ssl_certfile=None, ssl_keyfile=None, ssl_keyfile_password=None, ssl_ca_certs=None,
                ssl_verify="none", ssl_min_version="TLSv1.2", ssl_ciphers=None)


class TestDefaults:
    def test_every_option_has_its_default(self):
        adj = make()
        for name, value in DEFAULTS.items():
            assert getattr(adj, name) == value, name

    def test_every_option_is_known(self):
        assert set(Adjustments._param_map) == set(DEFAULTS) | {"listen"}

    def test_default_listen_is_all_ipv4_on_8080(self):
        assert bind_pairs(make()) == [("0.0.0.0", 8080)]

    def test_socket_options_disable_nagle(self):
        assert (socket.SOL_TCP, socket.TCP_NODELAY, 1) in make().socket_options

    def test_class_defaults_are_not_changed_by_instances(self):
        make(port="1234", threads="9")
        assert Adjustments.port == 8080
        assert Adjustments.threads == 4


class TestCoercions:
    @pytest.mark.parametrize("value", ["t", "True", " yes ", "Y", "on", "1", True, 1])
    def test_asbool_true(self, value):
        assert asbool(value) is True

    @pytest.mark.parametrize("value", ["f", "false", "no", "off", "0", "", "2", None, False])
    def test_asbool_false(self, value):
        assert asbool(value) is False

    def test_asoctal(self):
        assert asoctal("644") == 0o644
        with pytest.raises(ValueError):
            asoctal("9")

    def test_aslist_splits_lines_and_words(self):
        assert aslist("a b\n\n  c\n") == ["a", "b", "c"]
        assert aslist(["a b", "c"]) == ["a", "b", "c"]

    def test_aslist_cronly_splits_lines_only(self):
        assert aslist_cronly(" a b \n\n c ") == ["a b", "c"]
        assert aslist_cronly(("x", "y")) == ["x", "y"]

    @pytest.mark.parametrize(
        "raw, fixed",
        [("", ""), ("   ", ""), ("/", "/"), ("foo", "/foo"), ("//foo/bar//", "/foo/bar")],
    )
    def test_slash_fixed_str(self, raw, fixed):
        assert slash_fixed_str(raw) == fixed

    def test_str_iftruthy(self):
        assert str_iftruthy("") is None
        assert str_iftruthy(None) is None
        assert str_iftruthy(12) == "12"

    def test_as_socket_list_drops_non_sockets(self):
        with socket.socket() as sock:
            assert as_socket_list([sock, "x", 3]) == [sock]

    def test_to_int(self):
        assert to_int("42") == 42

    def test_options_are_coerced_from_strings(self):
        adj = make(
            threads="8",
            expose_tracebacks="yes",
            log_socket_errors="off",
            url_prefix="app/",
            unix_socket_perms="660",
            ident="",
            trusted_proxy="",
        )
        assert adj.threads == 8
        assert adj.expose_tracebacks is True
        assert adj.log_socket_errors is False
        assert adj.url_prefix == "/app"
        assert adj.unix_socket_perms == 0o660
        assert adj.ident is None
        assert adj.trusted_proxy is None

    def test_bad_integer_raises(self):
        with pytest.raises(ValueError):
            make(threads="many")


class TestErrors:
    def test_unknown_adjustment(self):
        with pytest.raises(ValueError, match="Unknown adjustment 'nope'"):
            make(nope=1)

    @pytest.mark.parametrize(
        "kw, message",
        [
            ({"listen": "127.0.0.1:1", "host": "x"}, "host or port may not be set if listen is set"),
            ({"listen": "127.0.0.1:1", "port": 1}, "host or port may not be set if listen is set"),
            ({"listen": "127.0.0.1:1", "sockets": []}, "socket may not be set if listen is set"),
            ({"sockets": [], "port": 1}, "host or port may not be set if sockets is set"),
            ({"sockets": [], "unix_socket": "/x"}, "unix_socket may not be set if sockets is set"),
            ({"unix_socket": "/x", "host": "x"}, "unix_socket may not be set if host or port is set"),
            ({"unix_socket": "/x", "listen": "x"}, "unix_socket may not be set if listen is set"),
        ],
    )
    def test_conflicting_places_to_listen(self, kw, message):
        with pytest.raises(ValueError, match=message):
            make(**kw)

    @pytest.mark.parametrize("listen", ["127.0.0.1:notaport", "host.invalid:80"])
    def test_invalid_host_or_port(self, listen):
        with pytest.raises(ValueError, match="Invalid host/port specified."):
            make(listen=listen)

    def test_trusted_proxy_count_needs_trusted_proxy(self):
        with pytest.raises(ValueError, match="trusted_proxy_count has no meaning"):
            make(trusted_proxy_count=2)

    def test_trusted_proxy_headers_need_trusted_proxy(self):
        with pytest.raises(ValueError, match="trusted_proxy_headers has no meaning"):
            make(trusted_proxy_headers="x-forwarded-for")

    def test_unknown_proxy_header(self):
        with pytest.raises(ValueError, match=r"unknown trusted_proxy_headers value \(x-bogus\)"):
            make(trusted_proxy="*", trusted_proxy_headers="x-bogus")

    def test_forwarded_excludes_x_forwarded(self):
        with pytest.raises(ValueError, match="mutually exclusive"):
            make(trusted_proxy="*", trusted_proxy_headers="forwarded x-forwarded-for")

    def test_mixed_socket_families(self):
        with socket.socket(socket.AF_UNIX) as unix, socket.socket() as inet:
            with pytest.raises(ValueError, match="Internet and UNIX sockets may not be mixed."):
                make(sockets=[unix, inet])

    def test_datagram_socket(self):
        with socket.socket(type=socket.SOCK_DGRAM) as dgram:
            with pytest.raises(ValueError, match="Only Internet or UNIX stream sockets"):
                make(sockets=[dgram])


class TestWarnings:
    def test_send_bytes_is_deprecated(self):
        with pytest.warns(DeprecationWarning, match="send_bytes"):
            adj = Adjustments(send_bytes="9000")
        assert adj.send_bytes == 9000

    def test_trusted_proxy_alone_trusts_x_forwarded_proto(self):
        with pytest.warns(DeprecationWarning):
            adj = Adjustments(trusted_proxy="10.0.0.1")
        assert adj.trusted_proxy_headers == {"x-forwarded-proto"}
        assert adj.trusted_proxy_count == 1


class TestProxyOptions:
    def test_headers_are_lower_cased(self):
        adj = make(
            trusted_proxy="*",
            trusted_proxy_count="2",
            trusted_proxy_headers="X-Forwarded-For\nx-forwarded-HOST",
        )
        assert adj.trusted_proxy_headers == {"x-forwarded-for", "x-forwarded-host"}
        assert adj.trusted_proxy_count == 2

    def test_forwarded_alone(self):
        adj = make(trusted_proxy="*", trusted_proxy_headers=["Forwarded"])
        assert adj.trusted_proxy_headers == {"forwarded"}


class TestListen:
    def test_host_and_port(self):
        assert bind_pairs(make(host="127.0.0.1", port="9000")) == [("127.0.0.1", 9000)]

    def test_explicit_default_host_replaces_listen(self):
        # Setting the default value explicitly still counts as setting it.
        assert bind_pairs(make(port=8080)) == [("0.0.0.0", 8080)]

    def test_listen_without_port_uses_default_port(self):
        assert bind_pairs(make(listen="127.0.0.1")) == [("127.0.0.1", 8080)]

    def test_several_addresses(self):
        adj = make(listen="127.0.0.1:9090 127.0.0.1:8080")
        assert bind_pairs(adj) == [("127.0.0.1", 9090), ("127.0.0.1", 8080)]

    def test_listen_as_lines(self):
        adj = make(listen="\n  127.0.0.1:1\n\n127.0.0.1:2 ")
        assert bind_pairs(adj) == [("127.0.0.1", 1), ("127.0.0.1", 2)]

    def test_service_names(self):
        adj = make(listen="127.0.0.1:http 0.0.0.0:https")
        assert bind_pairs(adj) == [("127.0.0.1", 80), ("0.0.0.0", 443)]

    def test_duplicates_are_dropped_but_port_zero_is_not(self):
        assert bind_pairs(make(listen="127.0.0.1:5 127.0.0.1:5")) == [("127.0.0.1", 5)]
        assert len(make(listen="127.0.0.1:0 127.0.0.1:0").listen) == 2

    def test_entries_are_socket_infos(self):
        (family, socktype, proto, sockaddr), = make(listen="127.0.0.1:5").listen
        assert family == socket.AF_INET
        assert socktype == socket.SOCK_STREAM
        assert proto == socket.IPPROTO_TCP
        assert sockaddr == ("127.0.0.1", 5)

    def test_wildcard_uses_enabled_families(self):
        families = {info[0] for info in make(listen="*:8080").listen}
        assert socket.AF_INET in families
        assert all(info[3][1] == 8080 for info in make(listen="*:8080").listen)

    def test_wildcard_ipv4_only(self):
        adj = make(listen="*:8080", ipv6="false")
        assert bind_pairs(adj) == [("0.0.0.0", 8080)]

    def test_ipv4_disabled_rejects_ipv4_address(self):
        with pytest.raises(ValueError, match="Invalid host/port"):
            make(ipv4=False, listen="127.0.0.1:8080")

    def test_ipv6_brackets(self, ipv6_loopback):
        assert bind_pairs(make(listen="[::1]:81")) == [("::1", 81)]
        assert bind_pairs(make(listen="[::1]")) == [("::1", 8080)]

    def test_wildcard_ipv6_only(self, ipv6_loopback):
        adj = make(listen="*:8080", ipv4="false")
        assert {info[0] for info in adj.listen} == {socket.AF_INET6}
        assert bind_pairs(adj) == [("::", 8080)]

    def test_ipv6_disabled_rejects_ipv6_address(self, ipv6_loopback):
        with pytest.raises(ValueError, match="Invalid host/port"):
            make(ipv6=False, listen="[::]:8080")

    def test_unix_socket_keeps_default_listen(self):
        adj = make(unix_socket="/tmp/app.sock")
        assert adj.unix_socket == "/tmp/app.sock"
        assert bind_pairs(adj) == [("0.0.0.0", 8080)]


class TestParseArgs:
    def parse(self, *argv):
        return Adjustments.parse_args(list(argv))

    def test_nothing(self):
        assert self.parse() == ({"help": False, "call": False}, [])

    def test_help_and_call(self):
        kw, args = self.parse("--help", "--call", "app:main")
        assert kw == {"help": True, "call": True}
        assert args == ["app:main"]

    def test_values_stay_strings(self):
        kw, _ = self.parse("--port=80", "--threads=8", "--url-scheme=https")
        assert kw == {"help": False, "call": False, "port": "80", "threads": "8", "url_scheme": "https"}

    def test_boolean_flags(self):
        kw, _ = self.parse("--expose-tracebacks", "--no-log-socket-errors", "--ipv4")
        assert kw["expose_tracebacks"] == "true"
        assert kw["log_socket_errors"] == "false"
        assert kw["ipv4"] == "true"

    def test_repeated_listen_is_joined(self):
        kw, _ = self.parse("--listen=a:80", "--listen=b:8080")
        assert kw["listen"] == " a:80 b:8080"

    def test_app_option(self):
        kw, args = self.parse("--app=mod:obj")
        assert kw["app"] == "mod:obj"
        assert args == []

    @pytest.mark.parametrize(
        "argv", [["--bogus"], ["--threads"], ["--ipv4=1"], ["--no-threads"]]
    )
    def test_bad_options(self, argv):
        import getopt

        with pytest.raises(getopt.GetoptError):
            self.parse(*argv)

    def test_every_option_has_a_flag(self):
        for name, convert in Adjustments._params:
            flag = "--" + name.replace("_", "-")
            argv = [flag] if convert is asbool else [flag + "=1"]
            kw, _ = self.parse(*argv)
            assert name in kw


class TestDispatchOption:
    def test_threads_by_default(self):
        assert make().dispatch == "threads"

    @pytest.mark.parametrize("given, expected", [("inline", "inline"), (" Inline ", "inline"), ("THREADS", "threads")])
    def test_modes_are_read_case_insensitively(self, given, expected):
        assert make(dispatch=given).dispatch == expected

    def test_cli_flag(self):
        kw, args = Adjustments.parse_args(["--dispatch=inline", "app:app"])
        assert kw["dispatch"] == "inline" and args == ["app:app"]
        del kw["help"], kw["call"]
        assert make(**kw).dispatch == "inline"

    @pytest.mark.parametrize("bad", ["", "thread", "loop", "0"])
    def test_unknown_mode_is_refused(self, bad):
        with pytest.raises(ValueError, match="dispatch must be threads or inline, not %r" % bad):
            make(dispatch=bad)


class TestLoopSchedulingOption:
    def test_batch_by_default(self):
        assert make().loop_scheduling == "batch"

    def test_cli_flag(self):
        kw, args = Adjustments.parse_args(["--loop-scheduling=Normal", "app:app"])
        assert kw["loop_scheduling"] == "Normal" and args == ["app:app"]
        del kw["help"], kw["call"]
        assert make(**kw).loop_scheduling == "normal"

    @pytest.mark.parametrize("bad", ["", "idle", "fifo", "1"])
    def test_unknown_policy_is_refused(self, bad):
        with pytest.raises(ValueError, match="loop_scheduling must be batch or normal, not %r" % bad):
            make(loop_scheduling=bad)


class TestAccessLogOptions:
    def test_off_by_default(self):
        adj = make()
        assert adj.access_log is None
        assert adj.access_log_format == "combined"

    def test_strings_as_from_an_ini_file(self):
        adj = make(access_log="/var/log/app/access.log", access_log_format="json")
        assert (adj.access_log, adj.access_log_format) == ("/var/log/app/access.log", "json")
        assert make(access_log="").access_log is None

    @pytest.mark.parametrize(
        "fmt", ["combined", "common", "json", '%(h)s "%(r)s" %(s)s %({user-agent}i)s %({x-id}o)s %(D)s 100%%']
    )
    def test_valid_formats(self, fmt):
        assert make(access_log="-", access_log_format=fmt).access_log_format == fmt

    @pytest.mark.parametrize(
        "fmt, message",
        [
            ("%(h)s %(zz)s", "unknown atom %(zz)s"),
            ("%(h", "an atom must look like %(name)s"),
            ("%(h)d", "an atom must look like %(name)s"),
        ],
    )
    def test_bad_format(self, fmt, message):
        with pytest.raises(ValueError, match=re.escape(message)):
            make(access_log="-", access_log_format=fmt)

    def test_command_line_flags(self):
        kw, args = Adjustments.parse_args(
            ["--access-log=-", "--access-log-format=%(s)s %(D)s", "app:app"]
        )
        assert (kw["access_log"], kw["access_log_format"], args) == ("-", "%(s)s %(D)s", ["app:app"])


class TestMetricsOptions:
    def test_off_by_default(self):
        adj = make()
        assert adj.metrics_listen is None
        assert adj.metrics_sockinfo is None
        assert make(metrics_listen="").metrics_sockinfo is None

    @pytest.mark.parametrize(
        "value, address",
        [("127.0.0.1:9100", ("127.0.0.1", 9100)), ("[::1]:9100", ("::1", 9100)), ("127.0.0.1:0", ("127.0.0.1", 0))],
    )
    def test_host_and_port(self, value, address):
        if ":" in address[0] and not socket.has_ipv6:
            pytest.skip("no IPv6")
        info = make(metrics_listen=value).metrics_sockinfo
        assert info[1] == socket.SOCK_STREAM
        assert tuple(info[3][:2]) == address

    @pytest.mark.parametrize("value", ["127.0.0.1", "9100", "127.0.0.1:http", "127.0.0.1:70000", "[::1]"])
    def test_a_port_is_required(self, value):
        with pytest.raises(ValueError, match=re.escape(f"metrics_listen must be host:port (for example 127.0.0.1:9100), not {value!r}")):
            make(metrics_listen=value)

    def test_unresolvable_host(self):
        with pytest.raises(ValueError, match="metrics_listen 'no-such-host.invalid:9100': cannot resolve"):
            make(metrics_listen="no-such-host.invalid:9100")

    def test_command_line_flag(self):
        kw, args = Adjustments.parse_args(["--metrics-listen=127.0.0.1:9100", "app:app"])
        assert (kw["metrics_listen"], args) == ("127.0.0.1:9100", ["app:app"])


class TestTLSOptions:
    def test_off_by_default(self):
        assert make().tls is False

    def test_verify_and_version_are_normalised(self):
        assert make(ssl_min_version="1.3").ssl_min_version == "TLSv1.3"
        assert make(ssl_min_version=" tlsv1.2 ").ssl_min_version == "TLSv1.2"
        assert make(ssl_verify=" None ").ssl_verify == "none"

    @pytest.mark.parametrize("name", ["ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs", "ssl_ciphers"])
    def test_tls_options_need_a_certificate(self, name):
        with pytest.raises(ValueError, match=name + " has no meaning without ssl_certfile"):
            make(**{name: "x"})

    @pytest.mark.parametrize("options", [
        {"ssl_verify": "sometimes"}, {"ssl_min_version": "TLSv1.1"}, {"ssl_verify": "required"},
    ])
    def test_bad_values_are_refused(self, options):
        with pytest.raises(ValueError):
            make(ssl_certfile="cert.pem", **options)

    def test_cli_flags(self):
        kw, _ = Adjustments.parse_args(["--ssl-certfile=c.pem", "--ssl-keyfile=k.pem", "--ssl-verify=required",
                                        "--ssl-ca-certs=ca.pem", "--ssl-min-version=TLSv1.3", "app:app"])
        assert (kw["ssl_certfile"], kw["ssl_keyfile"], kw["ssl_verify"], kw["ssl_ca_certs"],
                kw["ssl_min_version"]) == ("c.pem", "k.pem", "required", "ca.pem", "TLSv1.3")

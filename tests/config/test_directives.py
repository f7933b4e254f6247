"""Every mail directive: accepted and rejected forms, defaults, and merge rules."""

from __future__ import annotations

import os
import socket

import pytest

from mailgate.config import ConfigError, ServerConfig, SharedZone
from mailgate.config.modules import DIRECTIVES, MAIL_MODULES
from mailgate.config.registry import UNSET, Merge
from tests.config.helpers import AUTH, conf, error, server

LOC = "in <string>:1"


# --- defaults ------------------------------------------------------------------------

def test_defaults_of_a_bare_server():
    s = server()
    assert s.protocol == "imap"
    assert s.server_name == "testhost"
    assert s.timeout == 60.0
    assert s.resolver is None and s.resolver_timeout == 30.0
    assert s.max_errors == 5
    assert s.auth_http.peer == "127.0.0.1:9" and s.auth_http.uri == "/"
    assert s.auth_http_header == () and s.auth_http_pass_client_cert is False
    assert s.auth_http_timeout == 60.0
    assert (s.proxy, s.proxy_buffer, s.proxy_timeout) == (False, 4096, 86400.0)
    assert (s.proxy_pass_error_message, s.proxy_protocol, s.proxy_smtp_auth, s.xclient) == (
        False, "off", False, True)
    assert s.set_real_ip_from == ()
    assert s.imap_auth == {"plain"} and s.imap_capabilities == ("IMAP4", "IMAP4rev1", "UIDPLUS")
    assert s.imap_client_buffer == 4096
    assert s.pop3_auth == {"plain"} and s.pop3_capabilities == ("TOP", "USER", "UIDL")
    assert s.smtp_auth == {"plain", "login"} and s.smtp_capabilities == ()
    assert (s.smtp_client_buffer, s.smtp_greeting_delay) == (4096, 0.0)
    assert (s.ssl, s.starttls, s.tls_enabled) == (False, "off", False)
    assert s.ssl_certificate == () and s.ssl_certificate_key == ()
    assert s.ssl_password_file is None and s.ssl_dhparam is None
    assert s.ssl_ecdh_curve == "auto"
    assert s.ssl_protocols == {"TLSv1.2", "TLSv1.3"}
    assert s.ssl_ciphers == "HIGH:!aNULL:!MD5" and s.ssl_prefer_server_ciphers is False
    assert s.ssl_session_cache.builtin == "none" and s.ssl_session_cache.shared is None
    assert s.ssl_session_tickets is True and s.ssl_session_ticket_key == ()
    assert s.ssl_session_timeout == 300
    assert (s.ssl_verify_client, s.ssl_verify_depth) == ("off", 1)
    assert (s.ssl_client_certificate, s.ssl_trusted_certificate, s.ssl_crl) == (None, None, None)
    assert s.ssl_conf_command == () and s.ssl_certificate_compression is False
    assert [t.kind for t in s.error_log] == ["stderr"] and s.error_log[0].level == "error"


def test_every_mail_directive_has_a_server_field():
    fields = set(ServerConfig.directive_fields())
    names = {d.name for m in MAIL_MODULES for d in m.DIRECTIVES if d.merge is not Merge.NONE}
    names = (names - {"listen"}) | {"listens", "error_log"}
    assert names == fields


_DOC_SPECIAL = {"server_name", "protocol", "auth_http", "error_log", "ssl_session_cache"}


@pytest.mark.parametrize(
    "directive",
    [d for m in MAIL_MODULES for d in m.DIRECTIVES
     if d.default is not UNSET and not callable(d.default) and d.doc_default not in ("—", "")
     and d.name not in _DOC_SPECIAL],
    ids=lambda d: d.name,
)
def test_documented_default_is_the_declared_default(directive):
    """The README table's default, given as the directive's value, gives the default."""
    value = server("%s %s;" % (directive.name, directive.doc_default))
    assert getattr(value, directive.name) == directive.default


def test_no_directive_without_documentation():
    for d in DIRECTIVES.values():
        assert d.syntax.startswith(d.name) and d.summary, d.name


# --- value types -----------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [("on", True), ("off", False), ("ON", True), ("Off", False)])
def test_flag(value, expected):
    assert server("proxy_pass_error_message %s;" % value).proxy_pass_error_message is expected


def test_flag_rejects_other_words():
    assert error("mail { xclient yes; }") == (
        'invalid value "yes" in "xclient" directive, it must be "on" or "off" %s' % LOC)


@pytest.mark.parametrize("value,seconds", [("10ms", 0.01), ("1h 30m", 5400.0), ("1d1h", 90000.0), ("5", 5.0)])
def test_time(value, seconds):
    assert server('timeout "%s";' % value).timeout == seconds


def test_time_errors():
    assert error("mail { timeout 1M; }") == '"timeout" directive invalid value %s' % LOC
    assert error("mail { ssl_session_timeout 10ms; }") == (
        '"ssl_session_timeout" directive invalid value %s' % LOC)


def test_sec_slot():
    assert server("ssl_session_timeout 1y;").ssl_session_timeout == 31_536_000


def test_size():
    assert server("imap_client_buffer 8k; proxy_buffer 1m;").imap_client_buffer == 8192
    assert error("mail { proxy_buffer 1g; }") == '"proxy_buffer" directive invalid value %s' % LOC


def test_number():
    assert server("max_errors 3;").max_errors == 3
    assert error("mail { max_errors -1; }") == '"max_errors" directive invalid number %s' % LOC


def test_enum_is_case_insensitive():
    assert server("starttls ONLY; ssl_certificate c; ssl_certificate_key k;").starttls == "only"
    assert error("mail { starttls maybe; }") == 'invalid value "maybe" %s' % LOC


def test_bitmask_or_within_a_level_and_warns_duplicates():
    config = conf("mail { %s imap_auth plain; imap_auth login cram-md5 LOGIN; "
                  "server { listen 127.0.0.1:1; protocol imap; } }" % AUTH)
    assert config.servers[0].imap_auth == {"plain", "login", "cram-md5"}
    assert [(m.level, str(m)) for m in config.messages] == [
        ("warn", 'duplicate value "LOGIN" %s' % LOC)]


def test_bitmask_rejects_unknown():
    assert error("mail { imap_auth apop; }") == 'invalid value "apop" %s' % LOC
    assert error("mail { pop3_auth login; }") == 'invalid value "login" %s' % LOC


@pytest.mark.parametrize("directive", ["timeout", "server_name", "max_errors", "starttls",
                                       "ssl_ciphers", "xclient", "proxy_buffer", "resolver",
                                       "ssl_verify_client"])
def test_duplicates_at_one_level(directive):
    value = {"timeout": "1s", "server_name": "a", "max_errors": "1", "starttls": "off",
             "ssl_ciphers": "A", "xclient": "on", "proxy_buffer": "1k", "resolver": "off",
             "ssl_verify_client": "off"}[directive]
    text = "mail {\n%s %s;\n%s %s;\n}" % (directive, value, directive, value)
    assert error(text) == '"%s" directive is duplicate in <string>:3' % directive


def test_arrays_accumulate_at_one_level():
    s = server("ssl_certificate a; ssl_certificate b; auth_http_header X 1; auth_http_header Y 2;"
               " imap_capabilities A B; imap_capabilities C;")
    assert [os.path.basename(p) for p in s.ssl_certificate] == ["a", "b"]
    assert s.auth_http_header == (("X", "1"), ("Y", "2"))
    assert s.imap_capabilities == ("A", "B", "C")


def test_argument_counts():
    assert error("mail { auth_http_header X; }") == (
        'invalid number of arguments in "auth_http_header" directive %s' % LOC)
    assert error("mail { timeout 1 2; }") == (
        'invalid number of arguments in "timeout" directive %s' % LOC)
    assert error("mail { ssl_conf_command a b c; }") == (
        'invalid number of arguments in "ssl_conf_command" directive %s' % LOC)
    assert error("mail { ssl_session_cache a b c; }") == (
        'invalid number of arguments in "ssl_session_cache" directive %s' % LOC)


# --- merge rules -------------------------------------------------------------------------

def test_server_value_wins_then_mail_then_default():
    config = conf("""
        mail { %s timeout 10s; imap_capabilities A;
          server { listen 127.0.0.1:1; protocol imap; timeout 5s; }
          server { listen 127.0.0.1:2; protocol imap; imap_capabilities B C; }
          server { listen 127.0.0.1:3; protocol pop3; }
        }""" % AUTH)
    a, b, c = config.servers
    assert (a.timeout, b.timeout, c.timeout) == (5.0, 10.0, 10.0)
    assert (a.imap_capabilities, b.imap_capabilities) == (("A",), ("B", "C"))
    assert c.pop3_capabilities == ("TOP", "USER", "UIDL")


def test_arrays_replace_never_append():
    s = server("auth_http_header B 2; ssl_conf_command Options -SessionTicket; "
               "set_real_ip_from 10.0.0.1;",
               mail="auth_http_header A 1; ssl_conf_command Curves X25519; set_real_ip_from 10.0.0.2;")
    assert s.auth_http_header == (("B", "2"),)
    assert s.ssl_conf_command == (("Options", "-SessionTicket"),)
    assert s.set_real_ip_from == ("10.0.0.1/32",)


def test_conf_commands_inherit_only_when_the_server_sets_none():
    s = server("", mail="ssl_conf_command Curves X25519; ssl_conf_command Options -TLSv1.3;")
    assert s.ssl_conf_command == (("Curves", "X25519"), ("Options", "-TLSv1.3"))


def test_bitmask_replaced_by_lower_level():
    assert server("smtp_auth cram-md5;", mail="smtp_auth none login;").smtp_auth == {"cram-md5"}


def test_certificates_and_keys_inherit_separately():
    s = server("ssl_certificate /s.crt; listen 127.0.0.1:993 ssl;",
               mail="ssl_certificate /m.crt; ssl_certificate_key /m.key;")
    assert s.ssl_certificate == ("/s.crt",) and s.ssl_certificate_key == ("/m.key",)


def test_several_certificate_pairs():
    s = server("ssl_certificate /rsa.crt; ssl_certificate_key /rsa.key; "
               "ssl_certificate /ec.crt; ssl_certificate_key /ec.key; starttls on;")
    assert s.ssl_certificate == ("/rsa.crt", "/ec.crt")
    assert s.ssl_certificate_key == ("/rsa.key", "/ec.key")


def test_inline_certificates_and_engine_keys_are_kept_verbatim():
    s = server('ssl_certificate "data:-----BEGIN CERTIFICATE-----"; '
               "ssl_certificate_key engine:pkcs11:id_45; starttls on;")
    assert s.ssl_certificate == ("data:-----BEGIN CERTIFICATE-----",)
    assert s.ssl_certificate_key == ("engine:pkcs11:id_45",)
    assert "data:" not in repr(s.ssl_password_file)


def test_relative_paths_resolve_against_the_configuration_directory(tmp_path):
    (tmp_path / "mail.conf").write_text(
        "mail { %s ssl_certificate certs/a.crt; ssl_certificate_key a.key; "
        "ssl_session_ticket_key t.key; ssl_dhparam dh.pem; ssl_crl crl.pem; "
        "error_log logs/mail.log; server { listen 127.0.0.1:1; protocol imap; } }" % AUTH)
    from mailgate.config import load_config

    s = load_config(str(tmp_path / "mail.conf"), prefix="/srv/prefix").servers[0]
    assert s.ssl_certificate == (str(tmp_path / "certs/a.crt"),)
    assert s.ssl_certificate_key == (str(tmp_path / "a.key"),)
    assert s.ssl_session_ticket_key == (str(tmp_path / "t.key"),)
    assert (s.ssl_dhparam, s.ssl_crl) == (str(tmp_path / "dh.pem"), str(tmp_path / "crl.pem"))
    # error_log and pid resolve against the prefix, as in nginx
    assert s.error_log[0].path == "/srv/prefix/logs/mail.log"


class TestSessionCache:
    def cache(self, body="", mail=""):
        return server(body, mail=mail).ssl_session_cache

    def test_forms(self):
        assert self.cache("ssl_session_cache off;").builtin == "off"
        assert self.cache("ssl_session_cache none;").builtin == "none"
        c = self.cache("ssl_session_cache builtin;")
        assert (c.builtin, c.builtin_size, c.shared) == ("builtin", None, None)
        c = self.cache("ssl_session_cache builtin:1000 shared:SSL:1m;")
        assert (c.builtin, c.builtin_size, c.shared) == ("builtin", 1000, SharedZone("SSL", 1 << 20))
        c = self.cache("ssl_session_cache shared:SSL:10m;")
        assert (c.builtin, c.shared) == ("shared_only", SharedZone("SSL", 10 << 20))

    def test_shared_zone_inherits_separately_from_builtin(self):
        c = self.cache("ssl_session_cache builtin;", mail="ssl_session_cache shared:Z:1m;")
        assert (c.builtin, c.shared) == ("builtin", SharedZone("Z", 1 << 20))
        c = self.cache("ssl_session_cache off;", mail="ssl_session_cache shared:Z:1m;")
        assert (c.builtin, c.shared) == ("off", SharedZone("Z", 1 << 20))
        c = self.cache("", mail="ssl_session_cache shared:Z:1m;")
        assert c.builtin == "shared_only"

    @pytest.mark.parametrize("value,message", [
        ("foo", 'invalid session cache "foo"'),
        ("builtin:", 'invalid session cache "builtin:"'),
        ("builtin:x", 'invalid session cache "builtin:x"'),
        ("shared::1m", 'invalid session cache "shared::1m"'),
        ("shared:A", 'invalid session cache "shared:A"'),
        ("shared:A:x", 'invalid session cache "shared:A:x"'),
        ("shared:X:10k", 'session cache "shared:X:10k" is too small'),
    ])
    def test_errors(self, value, message):
        assert error("mail { ssl_session_cache %s; }" % value) == "%s %s" % (message, LOC)

    def test_zone_size_conflict(self):
        assert error("mail {\nssl_session_cache shared:A:1m;\nserver { ssl_session_cache shared:A:2m;"
                     " } }") == (
            'the size 2097152 of shared memory zone "A" conflicts with already declared size '
            "1048576 in <string>:3")

    def test_zones_listed_once(self, tmp_path):
        config = conf("""mail { %s ssl_certificate /c; ssl_certificate_key /k;
            ssl_session_cache shared:A:1m;
            server { listen 127.0.0.1:1 ssl; protocol imap; }
            server { listen 127.0.0.1:2 ssl; protocol imap; }
            server { listen 127.0.0.1:3; protocol imap; ssl_session_cache shared:B:1m; } }""" % AUTH)
        assert config.shared_zones == (SharedZone("A", 1 << 20),)


# --- core module -----------------------------------------------------------------------

def test_server_name_defaults_to_lowercased_hostname():
    assert server("", hostname="Box").server_name == "Box"  # given explicitly: kept
    assert server('server_name "";').server_name == "testhost"


def test_protocol_detection_by_port():
    for port, protocol in ((143, "imap"), (993, "imap"), (110, "pop3"), (995, "pop3"),
                           (25, "smtp"), (465, "smtp"), (587, "smtp")):
        config = conf("mail { %s server { listen 127.0.0.1:%d; } }" % (AUTH, port))
        assert config.servers[0].protocol == protocol


def test_explicit_protocol_wins_before_or_after_listen():
    assert conf("mail { %s server { listen 127.0.0.1:143; protocol smtp; } }" % AUTH).servers[0].protocol == "smtp"
    assert conf("mail { %s server { protocol pop3; listen 127.0.0.1:143; } }" % AUTH).servers[0].protocol == "pop3"


def test_protocol_detection_uses_the_first_port_of_a_range():
    assert conf("mail { %s server { listen 127.0.0.1:30143; listen 127.0.0.1:143; } }"
                % AUTH).servers[0].protocol == "imap"
    assert error("mail { %s server { listen 127.0.0.1:142-143; } }" % AUTH) == (
        "unknown mail protocol for server in <string>:1")


def test_unknown_protocol():
    assert error("mail { %s server { listen 127.0.0.1:1; protocol foo; } }" % AUTH) == (
        'unknown protocol "foo" %s' % LOC)
    assert error("mail {\n%s\nserver {\nlisten 127.0.0.1:30143; } }" % AUTH) == (
        "unknown mail protocol for server in <string>:3")


def test_server_needs_listen_and_auth_http():
    assert error("mail {\n server {\n protocol imap; } }") == (
        'no "listen" is defined for server in <string>:2')
    assert error("mail {\n server {\n listen 127.0.0.1:143; } }") == (
        'no "auth_http" is defined for server in <string>:2')


class TestListen:
    def listens(self, value):
        return server("ssl_certificate /c; ssl_certificate_key /k;", listen=value).listens

    def test_forms(self):
        (ls,) = self.listens("127.0.0.1:143")
        assert (ls.address, ls.port, ls.family, ls.addr_text) == ("127.0.0.1", 143, socket.AF_INET, "127.0.0.1:143")
        (ls,) = self.listens("143")
        assert (ls.address, ls.addr_text, ls.wildcard) == ("0.0.0.0", "0.0.0.0:143", True)
        (ls,) = self.listens("*:143")
        assert ls.wildcard
        (ls,) = self.listens("[::1]:143")
        assert (ls.address, ls.family, ls.addr_text) == ("::1", socket.AF_INET6, "[::1]:143")
        (ls,) = self.listens("unix:/run/mail.sock")
        assert (ls.address, ls.family, ls.addr_text) == ("/run/mail.sock", socket.AF_UNIX, "unix:/run/mail.sock")
        (ls,) = self.listens("127.0.0.5")
        assert ls.port == 0  # nginx binds an ephemeral port when none is given

    def test_addresses_read_and_printed_as_nginx(self):
        # ngx_inet_addr() and ngx_inet6_ntop(), not Python's ipaddress (issue 12)
        (ls,) = self.listens("0127.0.0.1:6000")
        assert (ls.address, ls.addr_text) == ("127.0.0.1", "127.0.0.1:6000")
        (ls,) = self.listens("[::ffff:127.0.0.1]:6000")
        assert (ls.address, ls.addr_text) == ("::ffff:127.0.0.1", "[::ffff:127.0.0.1]:6000")

    def test_port_range(self):
        assert [ls.port for ls in self.listens("127.0.0.1:6000-6002")] == [6000, 6001, 6002]

    def test_hostname_resolves_to_every_address(self):
        assert {ls.address for ls in self.listens("localhost:30143")} >= {"127.0.0.1"}

    def test_parameters(self):
        (ls,) = self.listens("127.0.0.1:1 ssl proxy_protocol backlog=10 rcvbuf=8k sndbuf=1m "
                             "so_keepalive=30m::10")
        assert (ls.ssl, ls.proxy_protocol, ls.backlog, ls.rcvbuf, ls.sndbuf) == (True, True, 10, 8192, 1 << 20)
        assert (ls.so_keepalive, ls.tcp_keepidle, ls.tcp_keepintvl, ls.tcp_keepcnt) == (True, 1800, None, 10)
        assert ls.bind  # backlog, rcvbuf, sndbuf, so_keepalive imply bind
        (ls,) = self.listens("127.0.0.1:1 ssl proxy_protocol")
        assert not ls.bind
        (ls,) = self.listens("[::1]:1 ipv6only=off so_keepalive=off")
        assert (ls.ipv6only, ls.so_keepalive, ls.bind) == (False, False, True)
        (ls,) = self.listens("127.0.0.1:1 multipath")
        assert ls.multipath and ls.bind

    @pytest.mark.parametrize("value,message", [
        ("127.0.0.1:99999", 'invalid port in "127.0.0.1:99999" of the "listen" directive'),
        ("127.0.0.1:", 'invalid port in "127.0.0.1:" of the "listen" directive'),
        ("0", 'invalid port in "0" of the "listen" directive'),
        ("[::1:143", 'invalid host in "[::1:143" of the "listen" directive'),
        ("[zz]:143", 'invalid IPv6 address in "[zz]:143" of the "listen" directive'),
        ("[fe80::1%lo]:143", 'invalid IPv6 address in "[fe80::1%lo]:143" of the "listen" directive'),
        ("[127.0.0.1]:143", 'invalid IPv6 address in "[127.0.0.1]:143" of the "listen" directive'),
        ("host.invalid:143", 'host not found in "host.invalid:143" of the "listen" directive'),
        ("127.0.0.1:2-1", 'invalid port range in "127.0.0.1:2-1" of the "listen" directive'),
        ("127.0.0.1:1/x", 'invalid host in "127.0.0.1:1/x" of the "listen" directive'),
        ("127.0.0.1:1 backlog=0", 'invalid backlog "backlog=0"'),
        ("127.0.0.1:1 backlog=-1", 'invalid backlog "backlog=-1"'),
        ("127.0.0.1:1 rcvbuf=1q", 'invalid rcvbuf "rcvbuf=1q"'),
        ("127.0.0.1:1 sndbuf=", 'invalid sndbuf "sndbuf="'),
        ("127.0.0.1:1 ipv6only=oops", 'invalid ipv6only flags "oops"'),
        ("127.0.0.1:1 so_keepalive=::", 'invalid so_keepalive value: "::"'),
        ("127.0.0.1:1 so_keepalive=x", 'invalid so_keepalive value: "x"'),
        ("127.0.0.1:1 default_server", 'invalid parameter "default_server"'),
        ("127.0.0.1:1 ipv6only=maybe", 'invalid parameter "ipv6only=maybe"'),
    ])
    def test_errors(self, value, message):
        assert error("mail { %s server { protocol imap; listen %s; } }" % (AUTH, value)) == (
            "%s %s" % (message, LOC))

    def test_duplicate_address_anywhere_in_mail(self):
        assert error("mail { %s server { listen 127.0.0.1:143; }\nserver { listen 127.0.0.1:143; } }"
                     % AUTH) == 'duplicate "127.0.0.1:143" address and port pair in <string>:2'

    def test_sockets_group_behind_a_wildcard(self):
        config = conf("""mail { %s
            server { listen 143; protocol imap; }
            server { listen 127.0.0.2:143; protocol imap; server_name b; }
            server { listen 127.0.0.3:143 bind; protocol imap; server_name c; }
            server { listen 127.0.0.4:144; protocol imap; } }""" % AUTH)
        sockets = config.listen_sockets()
        assert [s.listen.addr_text for s in sockets] == ["0.0.0.0:143", "127.0.0.3:143", "127.0.0.4:144"]
        wildcard = sockets[0]
        assert wildcard.server_for("127.0.0.2").server_name == "b"
        assert wildcard.server_for("127.0.0.9") is config.servers[0]


class TestResolver:
    def test_forms(self):
        r = server("resolver 127.0.0.53 [::1]:5353 valid=30s ipv6=off;").resolver
        assert r.servers == (("127.0.0.53", 53), ("::1", 5353))
        assert (r.valid, r.ipv4, r.ipv6) == (30, True, False)
        assert server("resolver off;", mail="resolver 127.0.0.1;").resolver is None

    @pytest.mark.parametrize("value,message", [
        ("127.0.0.1 valid=x", "invalid parameter: valid=x"),
        ("127.0.0.1 ipv4=maybe", "invalid parameter: ipv4=maybe"),
        ("127.0.0.1 ipv4=off ipv6=off", '"ipv4" and "ipv6" cannot both be "off"'),
        ("127.0.0.1:99999", 'invalid port in resolver "127.0.0.1:99999"'),
        ("host.invalid", 'host not found in resolver "host.invalid"'),
        ("valid=1s", "no name servers defined"),
    ])
    def test_errors(self, value, message):
        assert error("mail { resolver %s; }" % value) == "%s %s" % (message, LOC)


class TestErrorLog:
    def test_destinations_and_levels(self):
        s = server("error_log stderr info; error_log syslog:server=127.0.0.1:5514,facility=mail,"
                   "tag=mg,nohostname warn; error_log memory:1m debug; error_log /var/log/m.log;")
        kinds = [(t.kind, t.level) for t in s.error_log]
        assert kinds == [("stderr", "info"), ("syslog", "warn"), ("memory", "debug"), ("file", "error")]
        syslog = s.error_log[1]
        assert (syslog.address, syslog.facility, syslog.tag, syslog.nohostname) == (
            ("127.0.0.1", 5514), "mail", "mg", True)
        assert s.error_log[2].size == 1 << 20
        assert server("error_log syslog:server=unix:/dev/log;").error_log[0].address == "/dev/log"

    def test_inheritance(self):
        config = conf("error_log stderr notice;\nmail { %s server { listen 127.0.0.1:1; protocol imap; } }" % AUTH)
        assert config.servers[0].error_log == config.main.error_log
        assert server("", mail="error_log stderr info;").error_log[0].level == "info"

    @pytest.mark.parametrize("value,message", [
        ("/x foo", 'invalid log level "foo"'),
        ("/x info warn", 'duplicate log level "warn"'),
        ("/x info debug_mail", 'invalid log level "debug_mail"'),
        ("syslog:foo", 'unknown syslog parameter "foo"'),
        ("syslog:server=127.0.0.1,facility=bad", 'unknown syslog facility "bad"'),
        ("syslog:server=127.0.0.1,severity=bad", 'unknown syslog severity "bad"'),
        ("syslog:server=127.0.0.1,tag=a-b", 'syslog "tag" only allows alphanumeric characters and underscore'),
        ("syslog:server=127.0.0.1,tag=" + "a" * 33, "syslog tag length exceeds 32"),
        ("syslog:facility=mail", "no syslog server specified"),
        ("syslog:server=127.0.0.1:0", 'invalid port in syslog server "127.0.0.1:0"'),
        ("memory:0", 'invalid buffer size "0"'),
    ])
    def test_errors(self, value, message):
        assert error("mail { error_log %s; }" % value) == "%s %s" % (message, LOC)


# --- auth_http, proxy, realip --------------------------------------------------------------

class TestAuthHttp:
    def target(self, url):
        return conf("mail { auth_http %s; server { listen 127.0.0.1:1; protocol imap; } }" % url).servers[0].auth_http

    def test_forms(self):
        t = self.target("http://127.0.0.1:9000/auth?x=1")
        assert (t.address, t.port, t.uri, t.host_header, t.peer) == (
            "127.0.0.1", 9000, "/auth?x=1", "127.0.0.1", "127.0.0.1:9000")
        t = self.target("localhost/a")
        assert (t.port, t.uri, t.host_header) == (80, "/a", "localhost")
        t = self.target("unix:/run/auth.sock:/auth")
        assert (t.family, t.address, t.uri, t.host_header, t.peer) == (
            socket.AF_UNIX, "/run/auth.sock", "/auth", "localhost", "unix:/run/auth.sock")
        t = self.target("[::1]:8080")
        assert (t.address, t.port, t.host_header, t.peer) == ("::1", 8080, "[::1]", "[::1]:8080")

    def test_unix_path_of_bytes_that_are_not_utf8(self):
        # the config fuzz target (regressions/config/auth-http-unix-path-not-utf8): such a
        # byte, kept as a surrogate, made the length check raise UnicodeEncodeError
        assert self.target("unix:/run/a\udcc8.sock:/auth").address == "/run/a\udcc8.sock"
        assert self.target("unix:/" + "\udcc8" * 106).address == "/" + "\udcc8" * 106
        assert error("mail { auth_http unix:/%s; }" % ("\udcc8" * 107)).startswith(
            "too long path in the unix domain socket in auth_http")

    @pytest.mark.parametrize("url,message", [
        ("127.0.0.1:99999/x", 'invalid port in auth_http "127.0.0.1:99999/x"'),
        ("https://127.0.0.1:99999/", 'invalid port in auth_http "127.0.0.1:99999/"'),
        ("https://unix:/run/a.sock", 'https is not allowed with a unix socket in auth_http '
                                     '"unix:/run/a.sock"'),
        ("host.invalid", 'host not found in auth_http "host.invalid"'),
    ])
    def test_errors(self, url, message):
        assert error("mail { auth_http %s; }" % url) == "%s %s" % (message, LOC)


def test_proxy_protocol_values():
    assert server("proxy_protocol v2;").proxy_protocol == "v2"
    assert server("proxy_protocol on;").proxy_protocol == "on"
    assert error("mail { proxy_protocol v3; }") == 'invalid value "v3" %s' % LOC


def test_set_real_ip_from():
    config = conf("mail { %s set_real_ip_from 192.0.2.0/24; set_real_ip_from unix:;\n"
                  "set_real_ip_from 10.1.2.3/8; set_real_ip_from ::1; set_real_ip_from localhost;"
                  " server { listen 127.0.0.1:1; protocol imap; } }" % AUTH)
    entries = config.servers[0].set_real_ip_from
    assert entries[:4] == ("192.0.2.0/24", "unix:", "10.0.0.0/8", "::1/128")
    assert "127.0.0.1/32" in entries[4:]
    assert [str(m) for m in config.messages] == ["low address bits of 10.1.2.3/8 are meaningless in <string>:2"]
    assert error("mail { set_real_ip_from host.invalid; }") == (
        'host not found in set_real_ip_from "host.invalid" %s' % LOC)


# --- ssl module checks -------------------------------------------------------------------

class TestSslChecks:
    def test_tls_enabled_by_listen_starttls_or_ssl_on(self):
        certs = "ssl_certificate /c; ssl_certificate_key /k;"
        assert server(certs, listen="127.0.0.1:1 ssl").tls_enabled
        assert server(certs + " starttls on;").tls_enabled
        assert server(certs, mail="starttls only;").tls_enabled
        assert server(certs + " ssl on;").tls_enabled
        assert not server(certs).tls_enabled

    def test_ssl_directives_unchecked_without_tls(self):
        assert server("ssl_verify_client on; ssl_session_ticket_key /nonexistent;").ssl_verify_client == "on"

    def test_deprecated_ssl_warns(self):
        config = conf("mail { %s ssl_certificate /c; ssl_certificate_key /k; server { listen 127.0.0.1:1; "
                      "protocol imap; ssl on; } }" % AUTH)
        assert [(m.level, str(m)) for m in config.messages] == [
            ("warn", 'the "ssl" directive is deprecated, use the "listen ... ssl" directive instead %s' % LOC)]

    def test_ssl_conflicts_with_starttls(self):
        assert error("mail { ssl on; starttls on; }") == '"ssl" directive conflicts with "starttls" %s' % LOC
        assert error("mail { starttls only; ssl on; }") == '"starttls" directive conflicts with "ssl on" %s' % LOC

    @pytest.mark.parametrize("body,mail,message", [
        ("", "", 'no "ssl_certificate" is defined for the "listen ... ssl" directive in <string>:3'),
        ("ssl_certificate /c;", "", 'no "ssl_certificate_key" is defined for the "listen ... ssl" directive in <string>:3'),
        ("ssl_certificate /c; ssl_certificate_key /k; ssl_certificate rel.crt;", "",
         'no "ssl_certificate_key" is defined for certificate "rel.crt" and the "listen ... ssl" directive in <string>:3'),
    ])
    def test_certificate_pairs(self, body, mail, message):
        assert error("mail { %s %s\nserver {\nlisten 127.0.0.1:993 ssl; %s } }" % (AUTH, mail, body)) == message

    def test_starttls_location_comes_from_the_level_that_set_it(self):
        assert error("mail {\n%s\nstarttls on;\nserver { listen 127.0.0.1:1; protocol imap; } }" % AUTH) == (
            'no "ssl_certificate" is defined for the "starttls" directive in <string>:3')

    def test_verify_client_needs_a_ca(self):
        assert error("mail { %s ssl_certificate /c; ssl_certificate_key /k; server { "
                     "listen 127.0.0.1:1 ssl; protocol imap; ssl_verify_client optional; } }" % AUTH) == (
            "no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client")
        for ok in ("ssl_verify_client optional_no_ca;",
                   "ssl_verify_client on; ssl_trusted_certificate /ca;",
                   "ssl_verify_client on; ssl_client_certificate /ca;"):
            assert server("ssl_certificate /c; ssl_certificate_key /k; starttls on; " + ok).tls_enabled

    def test_ticket_key_files(self, tmp_path):
        good48, good80, bad = tmp_path / "48", tmp_path / "80", tmp_path / "47"
        good48.write_bytes(b"k" * 48)
        good80.write_bytes(b"k" * 80)
        bad.write_bytes(b"k" * 47)
        body = "ssl_certificate /c; ssl_certificate_key /k; starttls on; "
        s = server(body + "ssl_session_ticket_key %s; ssl_session_ticket_key %s;" % (good80, good48))
        assert s.ssl_session_ticket_key == (str(good80), str(good48))
        text = "mail { %s\nserver { listen 127.0.0.1:1; protocol imap; %s ssl_session_ticket_key %s; }\n\n}\n"
        assert error(text % (AUTH, body, bad)) == '"%s" must be 48 or 80 bytes in <string>:4' % bad
        missing = tmp_path / "missing"
        assert error(text % (AUTH, body, missing)) == (
            'open() "%s" failed (2: No such file or directory) in <string>:4' % missing)


class TestSessionStore:
    """ssl_session_store and ssl_session_store_key (mailgate's own, docs/deployment.md)."""

    TLS = "ssl_certificate /c; ssl_certificate_key /k; starttls on; "

    def test_address_and_parameters(self, tmp_path):
        key = tmp_path / "store.key"
        key.write_bytes(b"k" * 32)
        s = server(self.TLS + "ssl_session_store redis://u:p%%40ss@[::1]:6380/3 prefix=p: "
                   "timeout=1s; ssl_session_store_key %s;" % key)
        store = s.ssl_session_store
        assert (store.host, store.port, store.db, store.prefix, store.timeout) == ("::1", 6380, 3, "p:", 1.0)
        assert (store.username, store.password) == ("u", "p@ss")
        assert store.name == "redis://[::1]:6380/3"
        assert "p@ss" not in repr(store) and "p%40ss" not in repr(store)
        assert s.ssl_session_store_key == str(key)

    def test_defaults_inheritance_and_off(self, tmp_path):
        key = tmp_path / "store.key"
        key.write_bytes(b"k" * 32)
        mail = "ssl_session_store redis://127.0.0.1; ssl_session_store_key %s;" % key
        store = server(self.TLS, mail=mail).ssl_session_store
        assert (store.port, store.db, store.prefix, store.timeout) == (6379, 0, "mailgate:ssl:", 0.1)
        assert server(self.TLS + "ssl_session_store off;", mail=mail).ssl_session_store is None
        assert server().ssl_session_store is None

    @pytest.mark.parametrize("value", [
        "http://127.0.0.1", "redis://", "redis://127.0.0.1:0", "redis://127.0.0.1:70000",
        "redis://127.0.0.1/x", "redis://127.0.0.1?db=1", "redis://[::1", "off prefix=x",
    ])
    def test_bad_address(self, value):
        text = "mail { %s server { listen 127.0.0.1:1; protocol imap; ssl_session_store %s; } }"
        message = error(text % (AUTH, value))
        assert message.startswith(('invalid session store "', 'invalid parameter "')), message
        assert message.endswith("in <string>:1")

    def test_password_is_not_shown_in_errors(self):
        text = "mail { %s server { listen 127.0.0.1:1; protocol imap; ssl_session_store %s; } }"
        message = error(text % (AUTH, "redis://user:hunter2@127.0.0.1:x"))
        assert "hunter2" not in message and "user" not in message
        assert message == 'invalid session store "redis://127.0.0.1:x" in <string>:1'

    def test_bad_parameters(self):
        text = "mail { %s server { listen 127.0.0.1:1; protocol imap; ssl_session_store redis://h %s; } }"
        assert error(text % (AUTH, "timeout=0")) == 'invalid timeout "timeout=0" in <string>:1'
        assert error(text % (AUTH, "timeout=x")) == 'invalid timeout "timeout=x" in <string>:1'
        assert error(text % (AUTH, "db=1")) == 'invalid parameter "db=1" in <string>:1'

    def test_key_material_is_required(self, tmp_path):
        text = ("mail { %s\nserver { listen 127.0.0.1:1; protocol imap; %s\n"
                "ssl_session_store redis://127.0.0.1; %s } }")
        assert error(text % (AUTH, self.TLS, "")) == (
            'no "ssl_session_store_key" or "ssl_session_ticket_key" is defined for the '
            '"ssl_session_store" directive in <string>:3')
        short = tmp_path / "short.key"
        short.write_bytes(b"k" * 31)
        assert error(text % (AUTH, self.TLS, "ssl_session_store_key %s;" % short)) == (
            '"%s" must be at least 32 bytes in <string>:3' % short)
        missing = tmp_path / "missing"
        assert error(text % (AUTH, self.TLS, "ssl_session_store_key %s;" % missing)) == (
            'open() "%s" failed (2: No such file or directory) in <string>:3' % missing)
        tickets = tmp_path / "ticket.key"
        tickets.write_bytes(b"t" * 80)
        assert server(self.TLS + "ssl_session_store redis://h; ssl_session_ticket_key %s;"
                      % tickets).ssl_session_store is not None
        # without TLS nothing is checked: the server has no sessions
        assert server("ssl_session_store redis://h;").ssl_session_store is not None


class TestPasswordFile:
    def test_lines_read_once(self, tmp_path):
        f = tmp_path / "pw"
        f.write_bytes(b"first\r\n\nsecond pass\nlast")
        pf = server("ssl_password_file %s;" % f).ssl_password_file
        assert pf.path == str(f) and pf.passwords == (b"first", b"second pass", b"last")
        assert "first" not in repr(pf)

    def test_empty_file_gives_one_empty_password(self, tmp_path):
        f = tmp_path / "pw"
        f.write_bytes(b"\n\n")
        assert server("ssl_password_file %s;" % f).ssl_password_file.passwords == (b"",)

    def test_named_pipe(self, tmp_path):
        import threading

        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)

        def writer():
            with open(fifo, "wb") as w:
                w.write(b"from-a-pipe\n")

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            pf = server("ssl_password_file %s;" % fifo).ssl_password_file
        finally:
            thread.join(5)
        assert pf.passwords == (b"from-a-pipe",)

    def test_errors(self, tmp_path):
        f = tmp_path / "long"
        f.write_bytes(b"x" * 4096 + b"\n")
        assert error("mail { ssl_password_file %s; }" % f) == 'too long line in "%s" %s' % (f, LOC)
        f.write_bytes(b"x" * 4095 + b"\n")
        assert server("ssl_password_file %s;" % f).ssl_password_file.passwords == (b"x" * 4095,)
        f.write_bytes(b"x" * 3000 + b"\n" + b"y" * 4096)  # the long last line spans two reads
        assert error("mail { ssl_password_file %s; }" % f) == 'too long line in "%s" %s' % (f, LOC)
        assert error("mail { ssl_password_file /nonexistent; }") == (
            'open() "/nonexistent" failed (2: No such file or directory) %s' % LOC)
        f2 = tmp_path / "pw"
        f2.write_bytes(b"a\n")
        assert error("mail { ssl_password_file %s; ssl_password_file %s; }" % (f2, f2)) == (
            '"ssl_password_file" directive is duplicate %s' % LOC)


    def test_endless_files_are_refused(self, tmp_path):
        # regression: /dev/zero was read until memory ran out (issue 11)
        assert error("mail { ssl_password_file /dev/zero; }") == (
            'too long line in "/dev/zero" %s' % LOC)
        assert error("mail { ssl_password_file /dev/urandom; }").startswith(
            '"/dev/urandom" is too large: a password file may hold 1048576 bytes')
        many = tmp_path / "many"
        many.write_bytes(b"p\n" * (1024 * 1024 // 2 + 1))
        assert error("mail { ssl_password_file %s; }" % many) == (
            '"%s" is too large: a password file may hold 1048576 bytes %s' % (many, LOC))


def test_config_objects_are_immutable():
    s = server()
    with pytest.raises(AttributeError):
        s.timeout = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.locations["timeout"] = ("x", 1)  # type: ignore[index]


def test_locations_of_directives():
    config = conf("mail {\n%s\ntimeout 5s;\nserver {\nlisten 127.0.0.1:1;\nprotocol imap;\nmax_errors 2;\n} }" % AUTH)
    s = config.servers[0]
    assert s.location("timeout") == ("<string>", 3)
    assert s.location("max_errors") == ("<string>", 7)
    assert s.location("xclient") is None
    assert (s.file, s.line) == ("<string>", 4)


def test_config_error_without_location():
    assert str(ConfigError("plain")) == "plain"


def test_repeated_array_directives_grow_one_list_in_place():
    # issue 11, defect 2: each repetition copied the whole tuple (quadratic: a 4 MB file
    # of imap_capabilities lines never finished); now one list grows and is frozen once
    from mailgate.config.loader import Loader
    from mailgate.config.registry import Ctx

    loader = Loader("/", "<test>", "/")
    loader.parse_text("mail { %s imap_capabilities a b; imap_capabilities c;\n"
                      " auth_http_header X-A 1; auth_http_header X-B 2;\n"
                      " server { listen 127.0.0.1:1; protocol imap; } }\n"
                      "env A=1; env B;\n" % AUTH, "<test>", loader.main, Ctx.MAIN)
    caps = loader.mail.values["imap_capabilities"]
    assert caps == ["a", "b", "c"]
    loader.parse_text("imap_capabilities d;", "<test>", loader.mail, Ctx.MAIL)
    assert loader.mail.values["imap_capabilities"] is caps  # the same list, grown in place
    config = loader.build()
    (server,) = config.servers
    assert server.imap_capabilities == ("a", "b", "c", "d")
    assert server.auth_http_header == (("X-A", "1"), ("X-B", "2"))
    assert config.main.env == ("A=1", "B")


def test_a_large_file_of_repeated_lists_loads_whole():
    line = 'imap_capabilities "IMAP4rev1" "IDLE" "ID";\n'
    server_ = server(mail=line * 20000)
    assert len(server_.imap_capabilities) == 60000


@pytest.mark.skipif(os.geteuid() != 0, reason="the user directive is read only as root")
def test_user_names_end_at_a_nul_byte():
    # the config fuzz target's NUL bytes: getpwnam() raised ValueError, a traceback where
    # nginx looks up the C string (tests/fuzz/regressions/config/user-with-nul)
    assert conf('user "root\0x" "root\0y";').main.user == ("root", "root")
    assert error('user "nobody-\0x";') == 'getpwnam("nobody-") failed in <string>:1'
    assert error('user root "no-such-group-\0";') == (
        'getgrnam("no-such-group-") failed in <string>:1')

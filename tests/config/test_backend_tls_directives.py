"""mailgate's own directives for TLS to the backend (``proxy_ssl*``, ``proxy_starttls``)
and to the auth server (``auth_http https://``, ``auth_http_ssl_*``, ``auth_http_keepalive*``):
defaults, values, and the checks nginx makes on their ngx_stream_proxy_module twins
(ngx_stream_proxy_set_ssl() in src/stream/ngx_stream_proxy_module.c)."""

from __future__ import annotations

import pytest

from mailgate import cli
from mailgate.config.docs import OWN, directive_table
from mailgate.config.modules import DIRECTIVES
from mailgate.tls import ConfigError as TLSConfigError
from mailgate.tls import build_client_contexts
from tests.config.helpers import conf, error, parse_log_lines, server

LOC = "in <string>:1"
BACKEND = ("proxy_ssl", "proxy_starttls", "proxy_ssl_verify", "proxy_ssl_trusted_certificate",
           "proxy_ssl_verify_depth", "proxy_ssl_crl", "proxy_ssl_name", "proxy_ssl_server_name",
           "proxy_ssl_session_reuse", "proxy_ssl_protocols", "proxy_ssl_ciphers",
           "proxy_ssl_conf_command", "proxy_ssl_certificate", "proxy_ssl_certificate_key",
           "proxy_ssl_password_file")
AUTH = ("auth_http_keepalive", "auth_http_keepalive_timeout", "auth_http_ssl_verify",
        "auth_http_ssl_trusted_certificate", "auth_http_ssl_name")


def test_defaults():
    s = server()
    assert (s.proxy_ssl, s.proxy_starttls, s.backend_tls) == (False, False, "off")
    assert (s.proxy_ssl_verify, s.proxy_ssl_verify_depth, s.proxy_ssl_session_reuse) == (False, 1, True)
    assert (s.proxy_ssl_name, s.proxy_ssl_server_name) == ("", False)
    assert s.proxy_ssl_protocols == {"TLSv1.2", "TLSv1.3"} and s.proxy_ssl_ciphers == "HIGH:!aNULL:!MD5"
    assert (s.proxy_ssl_trusted_certificate, s.proxy_ssl_crl, s.proxy_ssl_certificate,
            s.proxy_ssl_certificate_key, s.proxy_ssl_password_file) == (None,) * 5
    assert s.proxy_ssl_conf_command == ()
    assert (s.auth_http_keepalive, s.auth_http_keepalive_timeout) == (0, 60.0)
    assert (s.auth_http_ssl_verify, s.auth_http_ssl_trusted_certificate, s.auth_http_ssl_name) == (
        True, None, "")
    assert s.auth_http.tls is False


@pytest.mark.parametrize("name", BACKEND + AUTH)
def test_marked_as_mailgates_own(name):
    assert DIRECTIVES[name].own
    assert any(line.startswith("| `%s` |" % name) and OWN in line
               for line in directive_table().splitlines())


def test_nginx_directives_are_not_marked():
    assert not any(d.own for d in DIRECTIVES.values() if d.name in ("proxy_protocol", "ssl", "auth_http"))
    assert OWN not in [line for line in directive_table().splitlines() if "`proxy_buffer`" in line][0]


def test_modes():
    assert server("proxy_ssl on;").backend_tls == "on"
    assert server("proxy_starttls on;", mail="proxy_ssl off;").backend_tls == "starttls"
    assert error("mail { auth_http 127.0.0.1:9; proxy_ssl on; proxy_starttls on; "
                 "server { listen 127.0.0.1:30143; protocol imap; } }") == (
        '"proxy_starttls" directive conflicts with "proxy_ssl on" %s' % LOC)


def test_values_inherit_from_mail(tmp_path, pki):
    s = server("proxy_ssl_name mx.test;", mail="proxy_ssl_verify on; proxy_ssl_verify_depth 2; "
               "proxy_ssl_trusted_certificate %s; proxy_ssl_protocols TLSv1.3; "
               "proxy_ssl_conf_command Options -SessionTicket;" % pki.ca.cert)
    assert (s.proxy_ssl_verify, s.proxy_ssl_verify_depth, s.proxy_ssl_name) == (True, 2, "mx.test")
    assert s.proxy_ssl_trusted_certificate == str(pki.ca.cert)
    assert s.proxy_ssl_protocols == {"TLSv1.3"}
    assert s.proxy_ssl_conf_command == (("Options", "-SessionTicket"),)


def test_bad_values():
    assert error("mail { proxy_ssl maybe; }") == (
        'invalid value "maybe" in "proxy_ssl" directive, it must be "on" or "off" %s' % LOC)
    assert error("mail { proxy_ssl_verify_depth x; }") == (
        '"proxy_ssl_verify_depth" directive invalid number %s' % LOC)
    assert error("mail { proxy_ssl_protocols TLSv9; }") == 'invalid value "TLSv9" %s' % LOC
    assert error("mail { auth_http_keepalive -1; }") == (
        '"auth_http_keepalive" directive invalid number %s' % LOC)
    assert error("mail { auth_http_keepalive_timeout 1y; }") == (
        '"auth_http_keepalive_timeout" directive invalid value %s' % LOC)
    assert error("mail { proxy_ssl_name a; proxy_ssl_name b; }") == (
        '"proxy_ssl_name" directive is duplicate %s' % LOC)


@pytest.mark.parametrize("name", ["proxy_ssl_trusted_certificate", "proxy_ssl_crl",
                                  "proxy_ssl_certificate", "auth_http_ssl_trusted_certificate"])
def test_missing_file_is_an_error_at_its_directive(tmp_path, name):
    missing = tmp_path / "missing.pem"
    text = "mail {\n auth_http 127.0.0.1:9;\n %s %s;\n server { listen 127.0.0.1:30143; protocol imap; }\n}" % (
        name, missing)
    assert error(text) == 'open() "%s" failed (2: No such file or directory) in <string>:3' % missing


def test_certificate_needs_a_key(pki):
    assert error("mail { auth_http 127.0.0.1:9; proxy_ssl_certificate %s; "
                 "server { listen 127.0.0.1:30143; protocol imap; } }" % pki.client.cert) == (
        'no "proxy_ssl_certificate_key" is defined for certificate "%s" %s' % (pki.client.cert, LOC))


def test_verify_needs_trusted_certificates():
    assert error("mail { auth_http 127.0.0.1:9; proxy_ssl_verify on; "
                 "server { listen 127.0.0.1:30143; protocol imap; } }") == (
        "no proxy_ssl_trusted_certificate for proxy_ssl_verify %s" % LOC)


def test_https_auth_http():
    target = server(mail="auth_http https://127.0.0.1/auth;").auth_http
    assert (target.tls, target.port, target.uri, target.peer) == (True, 443, "/auth", "127.0.0.1:443")
    assert server(mail="auth_http https://127.0.0.1:8443;").auth_http.port == 8443


def test_client_contexts(pki):
    config = conf("mail { auth_http https://127.0.0.1/; proxy_ssl on; proxy_ssl_verify on; "
                  "proxy_ssl_trusted_certificate %s; proxy_ssl_certificate %s; "
                  "proxy_ssl_certificate_key %s; server { listen 127.0.0.1:30143; protocol imap; } "
                  "server { listen 127.0.0.1:30144; protocol imap; auth_http 127.0.0.1:9; } }"
                  % (pki.ca.cert, pki.client.cert, pki.client.key_file))
    first, second = build_client_contexts(config)
    assert first.backend.verify and first.auth_http is not None and first.auth_http.verify
    assert second.auth_http is None


def test_bad_pem_is_found_by_building(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    config = conf("mail { auth_http 127.0.0.1:9; proxy_ssl_verify on; "
                  "proxy_ssl_trusted_certificate %s; server { listen 127.0.0.1:30143; protocol imap; } }"
                  % junk)
    with pytest.raises(TLSConfigError, match='cannot load certificate "%s"' % junk):
        build_client_contexts(config)


def test_mailgate_t_reports_them(tmp_path, capsys):
    missing = tmp_path / "ca.pem"
    path = tmp_path / "mail.conf"
    path.write_text("mail {\n  auth_http 127.0.0.1:9;\n  proxy_ssl on;\n"
                    "  proxy_ssl_trusted_certificate %s;\n"
                    "  server { listen 127.0.0.1:30143; protocol imap; }\n}\n" % missing)
    capsys.readouterr()
    assert cli.main(["-t", "-q", "-c", str(path)]) == 1
    assert parse_log_lines(capsys.readouterr().err) == [
        ("emerg", 'open() "%s" failed (2: No such file or directory) in %s:4' % (missing, path))]
    junk = tmp_path / "junk.pem"
    junk.write_text("junk\n")
    path.write_text("mail {\n  auth_http 127.0.0.1:9;\n  proxy_ssl_verify on;\n"
                    "  proxy_ssl_trusted_certificate %s;\n"
                    "  server { listen 127.0.0.1:30143; protocol imap; }\n}\n" % junk)
    assert cli.main(["-t", "-q", "-c", str(path)]) == 1
    ((level, message),) = parse_log_lines(capsys.readouterr().err)
    assert level == "emerg" and message.startswith('cannot load certificate "%s"' % junk)


def test_readme_example(tmp_path, pki):
    """README's backend TLS example is a configuration mailgate takes (its files put
    where it names them), and builds the client contexts of."""
    import re
    import shutil
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = text.split("<!-- backend-tls-example -->", 1)[1]
    example = re.search(r"```nginx\n(.*?)```", block, re.S).group(1)
    for name, source in (("internal-ca.pem", pki.ca.cert), ("mail.example.com.pem", pki.server_rsa.cert),
                         ("mail.example.com.key", pki.server_rsa.key_file),
                         ("proxy-client.pem", pki.client.cert), ("proxy-client.key", pki.client.key_file)):
        shutil.copy(source, tmp_path / name)
    example = example.replace("/etc/mailgate/", "%s/" % tmp_path)
    # the example's host names resolve nowhere here: the auth server by address
    example = example.replace("https://auth.example.com:8443", "https://127.0.0.1:8443")
    config = conf(example)
    imaps, pop3, submission = config.servers
    assert (imaps.backend_tls, pop3.backend_tls, submission.backend_tls) == ("on", "starttls", "starttls")
    assert imaps.auth_http.tls and imaps.auth_http_keepalive == 8
    assert submission.proxy_ssl_certificate == str(tmp_path / "proxy-client.pem")
    contexts = build_client_contexts(config)
    assert all(c.backend.verify and c.auth_http.verify for c in contexts)

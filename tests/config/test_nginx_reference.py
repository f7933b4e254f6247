"""``mailgate -t`` against ``nginx -t`` (Debian nginx 1.22 + libnginx-mod-mail) on the same files.

Each case writes a configuration (and the files it names) to a fresh directory, runs
both, and compares the exit status and the log lines (level, message) with the
directory replaced by ``D``.  Where mailgate follows current nginx instead of 1.22,
the case states both expected outputs: those are the known, intended differences.
"""

from __future__ import annotations

import pytest

from mailgate import cli
from tests.config.helpers import nginx_test, parse_log_lines

pytestmark = [pytest.mark.requires("nginx"), pytest.mark.nginx]

AUTH = "auth_http 127.0.0.1:9;"
IMAP = "server { listen 127.0.0.1:30143; protocol imap; }"


def mail(body: str) -> str:
    return "mail {\n%s\n%s\n}\n" % (AUTH, body)


CASES = {
    # accepted configurations
    "appendix-b": (
        """load_module /usr/lib/nginx/modules/ngx_mail_module.so;
worker_processes 1;
error_log D/error.log info;
events { worker_connections 256; }
mail {
    server_name mx.test;
    auth_http 127.0.0.1:30200/auth;
    auth_http_header X-Custom "hello world";
    ssl_certificate     server.crt;
    ssl_certificate_key server.key;

    server { listen 127.0.0.1:30143; protocol imap; }
    server { listen 127.0.0.1:30144; protocol imap; starttls on; imap_auth plain login cram-md5 external; }
    server { listen 127.0.0.1:30993 ssl; protocol imap; }
    server { listen 127.0.0.1:30994 ssl; protocol imap; ssl_verify_client on;
             ssl_client_certificate server.crt; auth_http_pass_client_cert on; }
    server { listen 127.0.0.1:30110; protocol pop3; }
    server { listen 127.0.0.1:30111; protocol pop3; starttls on; pop3_auth plain apop cram-md5 external; }
    server { listen 127.0.0.1:30025; protocol smtp; xclient off; }
    server { listen 127.0.0.1:30026; protocol smtp; smtp_auth none cram-md5 login plain; starttls on;
             smtp_capabilities PIPELINING "SIZE 10485760" 8BITMIME; }
    server { listen 127.0.0.1:30114 proxy_protocol; protocol pop3;
             set_real_ip_from 127.0.0.1; proxy_protocol on; }
}
""",
        None,
    ),
    "seed-example": (
        mail("""server {
        listen              127.0.0.1:30995 ssl;
        protocol            pop3;
        ssl_protocols       TLSv1.2 TLSv1.3;
        ssl_ciphers         AES128-SHA:AES256-SHA:RC4-SHA:DES-CBC3-SHA:RC4-MD5;
        ssl_certificate     server.crt;
        ssl_certificate_key server.key;
        ssl_session_cache   shared:SSL:10m;
        ssl_session_timeout 10m;
    }"""),
        None,
    ),
    "every-directive": (
        """worker_processes 2; pid D/m.pid; daemon off; worker_rlimit_nofile 1024;
env TZ; worker_shutdown_timeout 10s;
events { worker_connections 64; multi_accept on; use epoll; }
mail {
  %s server_name mx.test; timeout 30s; resolver 127.0.0.1 valid=10s; resolver_timeout 5s;
  max_errors 3; error_log D/mail.log info; auth_http_header X-A b; auth_http_timeout 5s;
  auth_http_pass_client_cert on; proxy on; proxy_buffer 8k; proxy_timeout 1h;
  proxy_pass_error_message on; proxy_smtp_auth on; xclient off; set_real_ip_from 10.0.0.0/8;
  imap_auth plain login cram-md5 external; imap_capabilities IMAP4rev1 IDLE; imap_client_buffer 8k;
  pop3_auth plain apop cram-md5 external; pop3_capabilities TOP USER;
  smtp_auth plain login cram-md5 external none; smtp_capabilities SIZE PIPELINING;
  smtp_client_buffer 8k; smtp_greeting_delay 1s;
  ssl_certificate server.crt; ssl_certificate_key server.key; ssl_password_file pw.txt;
  ssl_ecdh_curve prime256v1; ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers HIGH;
  ssl_prefer_server_ciphers on; ssl_session_cache builtin:1000 shared:MAIL:1m;
  ssl_session_tickets on; ssl_session_ticket_key t80.key; ssl_session_timeout 1h;
  ssl_verify_client optional; ssl_verify_depth 2; ssl_client_certificate server.crt;
  ssl_trusted_certificate server.crt; ssl_conf_command Options PrioritizeChaCha;
  server { listen 127.0.0.1:30143 ssl; listen [::1]:30143; protocol imap; starttls off; }
  server { listen 127.0.0.1:30025; protocol smtp; starttls only; }
}
""" % AUTH,
        None,
    ),
    "nginx-conf-with-http": (
        """user root; worker_processes auto;
include D/modules/*.conf;
events { worker_connections 768; }
http { sendfile on; server { listen 127.0.0.1:30080; location / { return 200; } } }
%s""" % mail(IMAP),
        None,
    ),
    "include-glob-without-match": (mail("include D/nothing/*.conf;\n" + IMAP), None),
    "port-only-listen": (mail("server { listen 30143; protocol imap; }"), None),
    "port-range": (mail("server { listen 127.0.0.1:30140-30142; protocol imap; }"), None),
    "bitmask-duplicate-warns": (mail("imap_auth plain PLAIN;\n" + IMAP), None),
    "low-address-bits-warns": (mail("set_real_ip_from 10.1.2.3/8;\n" + IMAP), None),
    "ssl-on-warns": (mail("ssl on; ssl_certificate server.crt; ssl_certificate_key server.key;\n" + IMAP), None),
    # lexer errors
    "unexpected-brace": (mail(IMAP) + "}\n", None),
    "unexpected-semicolon": (mail("; " + IMAP), None),
    "unexpected-after-quote": (mail('server_name "a"b;\n' + IMAP), None),
    "eof-in-block": ("mail {\n%s\n" % AUTH, None),
    "eof-in-directive": ("mail { %s\n server_name x" % AUTH, None),
    "not-terminated": (mail("auth_http 127.0.0.1 { }"), None),
    "no-opening-brace": (mail("server;"), None),
    # structure errors
    "unknown-directive": (mail("foo bar;\n" + IMAP), None),
    "unknown-in-server": (mail("server { listen 127.0.0.1:30143; protocol imap;\n bar; }"), None),
    "not-allowed-listen-in-mail": (mail("listen 127.0.0.1:1;"), None),
    "not-allowed-server-in-main": ("server { }\n", None),
    "not-allowed-timeout-in-main": ("timeout 1s;\n", None),
    "not-allowed-worker-connections": (mail("worker_connections 1;"), None),
    "mail-twice": (mail(IMAP) + "mail { }\n", None),
    "no-listen": (mail("server {\n protocol imap; }"), None),
    "no-auth-http": ("mail {\n server {\n listen 127.0.0.1:30143; protocol imap; } }\n", None),
    "unknown-mail-protocol": (mail("server {\n listen 127.0.0.1:30144; }"), None),
    "unknown-protocol": (mail("server { listen 127.0.0.1:30144; protocol foo; }"), None),
    "duplicate-address": (mail(IMAP + "\nserver { listen 127.0.0.1:30143; protocol imap; }"), None),
    "include-missing": (mail("include D/missing.conf;"), None),
    "error-in-included-file": (mail("include D/inc/*.conf;\n" + IMAP), None),
    # argument counts, duplicates and values
    "argument-count": (mail("auth_http_header X;"), None),
    "flag-value": (mail("xclient yes;"), None),
    "flag-duplicate": (mail("xclient on;\nxclient off;"), None),
    "time-value": (mail("timeout 1h1d;"), None),
    "sec-value": (mail("ssl_session_timeout 10ms;"), None),
    "size-value": (mail("imap_client_buffer 1g;"), None),
    "number-value": (mail("max_errors x;"), None),
    "enum-value": (mail("starttls maybe;"), None),
    "bitmask-value": (mail("pop3_auth login;"), None),
    "protocols-value": (mail("ssl_protocols TLSv1.4;"), None),
    "listen-port": (mail("server { listen 127.0.0.1:99999; protocol imap; }"), None),
    "listen-host": (mail("server { listen [::1:143; protocol imap; }"), None),
    "listen-backlog": (mail("server { listen 127.0.0.1:30143 backlog=0; protocol imap; }"), None),
    "listen-keepalive": (mail("server { listen 127.0.0.1:30143 so_keepalive=::; protocol imap; }"), None),
    "listen-unknown-parameter": (
        mail("server { listen 127.0.0.1:30143 default_server; protocol imap; }"),
        ('the invalid "default_server" parameter in D/t.conf:4',
         'invalid parameter "default_server" in D/t.conf:4'),
    ),
    "auth-http-port": (mail("server { listen 127.0.0.1:30143; auth_http http://127.0.0.1:99999/x; }"), None),
    "resolver-duplicate": (mail("resolver off;\nresolver off;"), None),
    "resolver-valid": (mail("resolver 127.0.0.1 valid=x;"), None),
    "resolver-ipv4-off": (
        mail("resolver 127.0.0.1 ipv4=off;\n" + IMAP),
        ('host not found in resolver "ipv4=off" in D/t.conf:4', None),
    ),
    "proxy-protocol-v2": (
        mail("proxy_protocol v2;\n" + IMAP),
        ('invalid value "v2" in "proxy_protocol" directive, it must be "on" or "off" in D/t.conf:4', None),
    ),
    "error-log-level": (mail("error_log D/x.log foo;"), None),
    "error-log-duplicate-level": (mail("error_log D/x.log info warn;"), None),
    "syslog-parameter": (mail("error_log syslog:foo;"), None),
    "syslog-facility": (mail("error_log syslog:server=127.0.0.1,facility=bad;"), None),
    "session-cache-small": (mail("ssl_session_cache shared:X:10k;"), None),
    "session-cache-invalid": (mail("ssl_session_cache builtin:abc;"), None),
    "session-cache-zone-conflict": (mail("ssl_session_cache shared:A:1m;\nserver { ssl_session_cache shared:A:2m; }"), None),
    "password-file-missing": (mail("ssl_password_file D/nonexistent;"), None),
    "password-file-duplicate": (mail("ssl_password_file pw.txt;\nssl_password_file pw.txt;"), None),
    "ssl-starttls-conflict": (mail("ssl on;\nstarttls on;"), None),
    "no-certificate-listen": (mail("server {\n listen 127.0.0.1:30993 ssl; protocol imap; }"), None),
    "no-certificate-starttls-mail": (mail("starttls on;\n" + IMAP), None),
    "no-key": (mail("ssl_certificate server.crt;\nserver {\n listen 127.0.0.1:30993 ssl; protocol imap; }"), None),
    "fewer-keys": (mail("ssl_certificate server.crt; ssl_certificate_key server.key; ssl_certificate other.crt;\n"
                        "server {\n listen 127.0.0.1:30993 ssl; protocol imap; }"), None),
    "verify-client-without-ca": (
        mail("ssl_certificate server.crt; ssl_certificate_key server.key;\n"
             "server { listen 127.0.0.1:30993 ssl; protocol imap; ssl_verify_client on; }"),
        ("no ssl_client_certificate for ssl_verify_client",
         "no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client"),
    ),
    "ticket-key-size": (
        mail("ssl_certificate server.crt; ssl_certificate_key server.key;\n"
             "server { listen 127.0.0.1:30993 ssl; protocol imap;\nssl_session_ticket_key t47.key; }\n"),
        None,
    ),
    "command-line-and-includes-ok": (mail("include D/ok/*.conf;"), None),
}

FILES = {
    "modules/50-mod-mail.conf": "load_module /usr/lib/nginx/modules/ngx_mail_module.so;\n",
    "inc/a.conf": "timeout 1s;\n",
    "inc/b.conf": "\n\nfoo;\n",
    "ok/servers.conf": IMAP + "\n",
    "pw.txt": "secret\n",
    "t47.key": "k" * 47,
    "t80.key": "k" * 80,
}


@pytest.fixture(scope="module")
def certificate(pki):
    """(certificate chain, key) as text: the test PKI's RSA server."""
    return pki.server_rsa.cert.read_text(), pki.server_rsa.key_file.read_text()


def _normalize(lines, directory):
    return [(level, message.replace(directory, "D")) for level, message in lines
            if level != "notice"]


def _mailgate_test(directory, capsys):
    capsys.readouterr()
    status = cli.main(["-t", "-p", directory + "/", "-c", directory + "/t.conf"])
    return status, parse_log_lines(capsys.readouterr().err)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_verdict_and_messages_as_nginx(case, tmp_path, certificate, capsys):
    text, difference = CASES[case]
    directory = str(tmp_path)
    for name, content in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    (tmp_path / "server.crt").write_text(certificate[0])
    (tmp_path / "server.key").write_text(certificate[1])
    (tmp_path / "t.conf").write_text("events {}\n" + text.replace("D/", directory + "/")
                                     if not text.startswith(("load_module", "user", "worker"))
                                     else text.replace("D/", directory + "/"))
    loads_itself = "load_module" in text or "modules/" in text
    nginx_status, nginx_lines, raw = nginx_test(directory, load_mail_module=not loads_itself)
    nginx_lines = _normalize(nginx_lines, directory)
    status, lines = _mailgate_test(directory, capsys)
    lines = _normalize(lines, directory)
    if difference is None:
        assert (status, lines) == (nginx_status, nginx_lines), raw
        return
    nginx_expected, mailgate_expected = difference
    assert nginx_lines[-1][1] == nginx_expected, raw
    if mailgate_expected is None:
        assert status == 0 and not [l for l in lines if l[0] == "emerg"]
    else:
        assert status == 1 and lines[-1][1] == mailgate_expected

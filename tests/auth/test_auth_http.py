"""The auth_http client: request bytes, reading answers with nginx's rules, decisions, transport."""

from __future__ import annotations

import asyncio
import socket

import pytest

from mailgate.auth import AuthFacts, ProxyAddresses, SSLFacts
from mailgate.auth.http import AuthHttpError, build_request, decide, escape, parse_response, query
from mailgate.config import AuthHttpTarget
from mailgate.protocol.events import AuthFailed, AuthInternalError, AuthOK, AuthRetry

TARGET = AuthHttpTarget("127.0.0.1:30200/auth", socket.AF_INET, "127.0.0.1", 30200, "/auth",
                        "127.0.0.1", "127.0.0.1:30200")
PEER = "127.0.0.1:30200"
SERVICE = "auth http server " + PEER


def facts(**kw) -> AuthFacts:
    base = dict(protocol="imap", method="plain", login=b"good", password=b"secret pass",
                login_attempt=1, client_ip="127.0.0.1")
    base.update(kw)
    return AuthFacts(**base)


# --- the request -------------------------------------------------------------------------

def test_spec_imap_example_byte_for_byte():
    assert build_request(TARGET, (("X-Custom", "hello world"),), facts()) == (
        b"GET /auth HTTP/1.0\r\n"
        b"Host: 127.0.0.1\r\n"
        b"Auth-Method: plain\r\n"
        b"Auth-User: good\r\n"
        b"Auth-Pass: secret%20pass\r\n"
        b"Auth-Protocol: imap\r\n"
        b"Auth-Login-Attempt: 1\r\n"
        b"Client-IP: 127.0.0.1\r\n"
        b"X-Custom: hello world\r\n"
        b"\r\n"
    )


def test_escaping_only_controls_space_and_percent():
    assert escape(b"a b%c\x00\x1f\x20\x7f\xff~") == b"a%20b%25c%00%1F%20\x7f\xff~"
    assert escape(b"plain") == b"plain"


def test_salt_is_sent_with_its_own_crlf_for_apop_and_cram_md5_only():
    salt = b"<1948697756.1795881823@mx.test>\r\n"
    request = build_request(TARGET, (), facts(protocol="pop3", method="apop", password=b"d" * 32,
                                               salt=salt))
    assert b"Auth-Pass: " + b"d" * 32 + b"\r\nAuth-Salt: " + salt + b"Auth-Protocol: pop3\r\n" in request
    request = build_request(TARGET, (), facts(protocol="pop3", method="external", password=b"",
                                               salt=salt))
    assert b"Auth-Salt" not in request  # current nginx: only apop and cram-md5


def test_smtp_none_client_host_and_proxy_protocol():
    request = build_request(TARGET, (), facts(
        protocol="smtp", method="none", login=b"", password=b"", client_host="[UNAVAILABLE]",
        proxy_protocol=ProxyAddresses("192.0.2.7", 40000, "127.0.0.1", 30114),
        smtp_helo=b"client.example", smtp_from=b"MAIL FROM:<a@b> SIZE=10", smtp_to=b"RCPT TO:<c@d>"))
    assert request.split(b"\r\n")[2:] == [
        b"Auth-Method: none", b"Auth-User: ", b"Auth-Pass: ", b"Auth-Protocol: smtp",
        b"Auth-Login-Attempt: 1", b"Client-IP: 127.0.0.1", b"Client-Host: [UNAVAILABLE]",
        b"Proxy-Protocol-Addr: 192.0.2.7", b"Proxy-Protocol-Port: 40000",
        b"Proxy-Protocol-Server-Addr: 127.0.0.1", b"Proxy-Protocol-Server-Port: 30114",
        b"Auth-SMTP-Helo: client.example", b"Auth-SMTP-From: MAIL FROM:<a@b> SIZE=10",
        b"Auth-SMTP-To: RCPT TO:<c@d>", b"", b""]


def test_ssl_block():
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    ssl = SSLFacts("TLSv1.3", "TLS_AES_256_GCM_SHA384", "SUCCESS", "CN=client one,O=MT Org,C=US",
                   "CN=ca", "1A2B", "00ff" * 10, pem)
    request = build_request(TARGET, (("X-A", "b"),), facts(ssl=ssl))
    assert request.split(b"\r\n")[8:] == [
        b"Auth-SSL: on", b"Auth-SSL-Protocol: TLSv1.3", b"Auth-SSL-Cipher: TLS_AES_256_GCM_SHA384",
        b"Auth-SSL-Verify: SUCCESS", b"Auth-SSL-Subject: CN=client one,O=MT Org,C=US",
        b"Auth-SSL-Issuer: CN=ca", b"Auth-SSL-Serial: 1A2B", b"Auth-SSL-Fingerprint: " + b"00ff" * 10,
        b"Auth-SSL-Cert: -----BEGIN%20CERTIFICATE-----%0AMIIB%0A-----END%20CERTIFICATE-----%0A",
        b"X-A: b", b"", b""]
    plain = build_request(TARGET, (), facts(ssl=SSLFacts("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")))
    assert b"Auth-SSL: on\r\nAuth-SSL-Protocol: TLSv1.2\r\nAuth-SSL-Cipher: ECDHE-RSA-AES256-GCM-SHA384\r\n\r\n" in plain


# --- reading answers -------------------------------------------------------------------------

OK = b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n"


@pytest.mark.parametrize("data", [
    OK,
    OK.replace(b"\r\n", b"\n"),
    OK.replace(b"HTTP/1.0 200 OK", b"HTTP/1.1 500 Internal Server Error"),  # status ignored
    OK.replace(b"HTTP/1.0 200 OK\r\n", b""),  # no status line at all
    OK.replace(b"HTTP/1.0 200 OK", b"HTTP/garbage"),
    # headers that mean something in HTTP mean nothing to nginx here: unknown to
    # ngx_mail_auth_http_process_headers(), so ignored
    OK.replace(b"\r\n\r\n", b"\r\nContent-Length: abc\r\nTransfer-Encoding: chunked\r\n"
               b"Content-Length: 5\r\nConnection: bogus\r\n\r\n"),
])
def test_accepted_answers(data):
    response = parse_response(data)
    assert (response.server, response.port, response.failure) == (b"127.0.0.1", b"143", None)


def test_incomplete_answers_wait_for_more():
    for cut in range(len(OK)):
        assert parse_response(OK[:cut]) is None, cut
    assert parse_response(OK + b"body ignored") is not None


def test_values_trimmed_of_spaces_and_last_one_wins():
    response = parse_response(b"Auth-Status:   Invalid  login  \r\nAuth-Port: 1\r\nauth-port: 2\r\n\r\n")
    assert (response.failure, response.port) == (b"Invalid  login", b"2")


def test_a_tab_is_not_whitespace():
    response = parse_response(b"Auth-Server:\t127.0.0.1 \r\nAuth-Wait: \t3\r\nAuth-User: \tbob\t \r\n\r\n")
    assert (response.server, response.wait, response.user) == (b"\t127.0.0.1", 0, b"\tbob\t")


def test_header_without_colon_has_an_empty_value():
    response = parse_response(b"HTTP/1.0 200 OK\r\nAuth-Status\r\n\r\n")
    assert response.failure == b""


def test_status_words_are_case_sensitive():
    assert parse_response(b"Auth-Status: ok\r\n\r\n").failure == b"ok"
    assert parse_response(b"Auth-Status: WAIT\r\n\r\n").wait_status


def test_auth_wait_numeric_only():
    assert parse_response(b"Auth-Wait: 3\r\n\r\n").wait == 3
    assert parse_response(b"Auth-Wait: x\r\n\r\n").wait == 0


def test_numbers_of_thousands_of_digits():
    # met while writing the auth_http fuzz target: int() refused them with ValueError
    digits = b"1" * 5000
    assert parse_response(b"Auth-Wait: " + digits + b"\r\n\r\n").wait == 0
    assert parse_response(b"Auth-Wait: " + b"0" * 5000 + b"2\r\n\r\n").wait == 2
    assert run_decide(b"Auth-Server: 127.0.0.1\r\nAuth-Port: " + digits + b"\r\n\r\n")[1] == [
        ("error", SERVICE + ' sent invalid server port:"%s"' % digits.decode())]


@pytest.mark.parametrize("data,error", [
    (b"HTTP/1.0 200 OK\rX\n\r\n", "invalid response"),
    (b"X_Foo: a\r\n\r\n", "invalid header in response"),
    (b"-Foo: a\r\n\r\n", "invalid header in response"),
    (b" Auth-Status: OK\r\n\r\n", "invalid header in response"),
    (b"Auth-Status: O\rK\r\n\r\n", "invalid header in response"),
    (b"X_Foo: a\r\n", "invalid header in response"),  # refused before the end arrives
])
def test_refused_answers(data, error):
    with pytest.raises(AuthHttpError) as info:
        parse_response(data)
    assert str(info.value) == error


# --- decisions ---------------------------------------------------------------------------------

def run_decide(data):
    logs = []
    result = decide(parse_response(data), PEER, lambda level, msg: logs.append((level, msg)))
    return result, logs


def test_ok_leaves_the_password_to_the_machine():
    result, logs = run_decide(OK)
    assert result == AuthOK("127.0.0.1", 143, None, None, "127.0.0.1:143", PEER)
    assert logs == []


def test_ok_without_auth_status_and_with_overrides():
    result, _ = run_decide(b"Auth-Server: ::1\r\nAuth-Port: 0143\r\nAuth-User: other\r\nAuth-Pass: pw\r\n\r\n")
    assert (result.server, result.port, result.user, result.password, result.upstream) == (
        "::1", 143, b"other", b"pw", "::1:0143")


def test_server_address_read_as_ngx_parse_addr():
    # an octal-looking octet is decimal to ngx_inet_addr(); IPv6 printed by ngx_inet6_ntop()
    result, _ = run_decide(b"Auth-Server: 0127.0.0.1\r\nAuth-Port: 143\r\n\r\n")
    assert (result.server, result.upstream) == ("127.0.0.1", "0127.0.0.1:143")
    result, _ = run_decide(b"Auth-Server: 0:0:0:0:0:ffff:7f00:1\r\nAuth-Port: 143\r\n\r\n")
    assert result.server == "::ffff:127.0.0.1"


def test_failure_with_wait_and_smtp_error_code():
    result, logs = run_decide(b"Auth-Status: Temporary failure\r\nAuth-Wait: 2\r\n"
                              b"Auth-Error-Code: 451 4.3.0\r\n\r\n")
    assert result == AuthFailed(b"Temporary failure", 2, b"451 4.3.0")
    assert logs == []  # the machine logs "client login failed", with its context


def test_failure_wins_over_wait_and_server():
    result, _ = run_decide(b"Auth-Status: WAIT\r\nAuth-Status: no\r\nAuth-Server: 127.0.0.1\r\n\r\n")
    assert isinstance(result, AuthFailed)


def test_wait_status_retries():
    assert run_decide(b"Auth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n")[0] == AuthRetry(1)


@pytest.mark.parametrize("data,message", [
    (b"Auth-Status: OK\r\n\r\n", SERVICE + " did not send server or port"),
    (b"Auth-Server: 127.0.0.1\r\n\r\n", SERVICE + " did not send server or port"),
    (b"Auth-Server: mail.example\r\nAuth-Port: 143\r\n\r\n", SERVICE + ' sent invalid server address:"mail.example"'),
    (b"Auth-Server: [::1]\r\nAuth-Port: 143\r\n\r\n", SERVICE + ' sent invalid server address:"[::1]"'),
    (b"Auth-Server: fe80::1%lo\r\nAuth-Port: 143\r\n\r\n", SERVICE + ' sent invalid server address:"fe80::1%lo"'),
    (b"Auth-Server: 127.0.0.1\r\nAuth-Port: 65536\r\n\r\n", SERVICE + ' sent invalid server port:"65536"'),
])
def test_internal_errors(data, message):
    result, logs = run_decide(data)
    assert isinstance(result, AuthInternalError)
    assert logs == [("error", message)]


@pytest.mark.parametrize("value,expected", [
    (b"on", "on"), (b"STARTTLS", "starttls"), (b"off", "off"), (None, None)])
def test_auth_ssl_backend(value, expected):
    """mailgate's Auth-SSL-Backend sets the TLS to this session's backend."""
    header = b"Auth-SSL-Backend: %s\r\n" % value if value is not None else b""
    result, logs = run_decide(b"Auth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 993\r\n"
                              + header + b"\r\n")
    assert isinstance(result, AuthOK) and result.backend_tls == expected and logs == []


def test_auth_ssl_backend_invalid():
    result, logs = run_decide(b"Auth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 993\r\n"
                              b"Auth-SSL-Backend: yes\r\n\r\n")
    assert isinstance(result, AuthInternalError)
    assert logs == [("error", SERVICE + ' sent invalid Auth-SSL-Backend:"yes"')]


def test_auth_ssl_backend_does_not_matter_in_a_failure():
    result, logs = run_decide(b"Auth-Status: Invalid login\r\nAuth-SSL-Backend: yes\r\n\r\n")
    assert isinstance(result, AuthFailed) and logs == []


def test_keepalive_request_is_http11_otherwise_the_same():
    facts = AuthFacts(protocol="imap", method="plain", login=b"a", password=b"b",
                      login_attempt=1, client_ip="127.0.0.1")
    target = AuthHttpTarget("x", socket.AF_INET, "127.0.0.1", 9, "/auth", "127.0.0.1", "127.0.0.1:9")
    plain = build_request(target, (), facts)
    kept = build_request(target, (), facts, keepalive=True)
    assert plain.startswith(b"GET /auth HTTP/1.0\r\n")
    assert kept == plain.replace(b"HTTP/1.0", b"HTTP/1.1", 1)


# --- transport against real local servers ------------------------------------------------------

async def serve_once(answer: bytes | None, delay: float = 0.0):
    """A one-connection TCP server: record the request, wait, answer (or close)."""
    received = asyncio.get_running_loop().create_future()

    async def handle(reader, writer):
        data = await reader.readuntil(b"\r\n\r\n")
        received.set_result(data)
        await asyncio.sleep(delay)
        if answer is not None:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = AuthHttpTarget("x", socket.AF_INET, "127.0.0.1", port, "/auth", "127.0.0.1", "127.0.0.1:%d" % port)
    return server, target, received


def test_query_round_trip():
    async def main():
        server, target, received = await serve_once(OK)
        logs = []
        async with server:
            result = await query(target, (), 5.0, facts(), lambda *a: logs.append(a))
        return result, await received, logs

    result, request, logs = asyncio.run(main())
    assert isinstance(result, AuthOK) and result.port == 143 and logs == []
    assert request.startswith(b"GET /auth HTTP/1.0\r\nHost: 127.0.0.1\r\n")


def test_query_timeout_refused_and_early_close():
    async def main():
        logs = []
        log = lambda *a: logs.append(a)  # noqa: E731
        server, target, _ = await serve_once(OK, delay=1.0)
        async with server:
            slow = await query(target, (), 0.2, facts(), log)
        server, target, _ = await serve_once(None)
        async with server:
            closed = await query(target, (), 5.0, facts(), log)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        refused_target = AuthHttpTarget("x", socket.AF_INET, "127.0.0.1", port, "/", "127.0.0.1", "127.0.0.1:%d" % port)
        refused = await query(refused_target, (), 5.0, facts(), log)
        unix_target = AuthHttpTarget("x", socket.AF_UNIX, "/nonexistent/auth.sock", 0, "/", "localhost",
                                     "unix:/nonexistent/auth.sock")
        missing = await query(unix_target, (), 5.0, facts(), log)
        return slow, closed, refused, missing, logs, target

    slow, closed, refused, missing, logs, target = asyncio.run(main())
    assert all(isinstance(r, AuthInternalError) for r in (slow, closed, refused, missing))
    assert logs[0][0] == "error" and logs[0][1].endswith("timed out (110: Connection timed out)")
    assert logs[1] == ("error", "recv() failed (111: Connection refused)")
    assert logs[2] == ("error", "connect() to unix:/nonexistent/auth.sock failed (2: No such file or directory)")
    assert len(logs) == 3  # the early close is silent, as in nginx


def test_query_invalid_header_is_logged():
    async def main():
        server, target, _ = await serve_once(b"HTTP/1.0 200 OK\r\nX_Foo: 1\r\n\r\n")
        logs = []
        async with server:
            result = await query(target, (), 5.0, facts(), lambda *a: logs.append(a))
        return result, logs, target

    result, logs, target = asyncio.run(main())
    assert isinstance(result, AuthInternalError)
    assert logs == [("error", "auth http server %s sent invalid header in response" % target.peer)]


# --- OAuth 2.0 (mailgate's own headers) --------------------------------------------------

def test_oauth_token_and_oauthbearer_host_and_port():
    token = b"eyJ0eXAi.eyJzdWIi.c2ln"
    request = build_request(TARGET, (), facts(method="oauthbearer", password=token,
                                               sasl_host=b"mx a.test", sasl_port=b"993"))
    assert (b"Auth-Method: oauthbearer\r\nAuth-User: good\r\nAuth-Pass: " + token
            + b"\r\nAuth-SASL-Host: mx%20a.test\r\nAuth-SASL-Port: 993\r\n"
            b"Auth-Protocol: imap\r\n") in request
    # only what the client named; never for another method
    request = build_request(TARGET, (), facts(method="oauthbearer", password=token,
                                               sasl_port=b"993"))
    assert b"Auth-SASL-Host" not in request and b"Auth-SASL-Port: 993\r\n" in request
    request = build_request(TARGET, (), facts(method="xoauth2", password=token,
                                               sasl_host=b"mx", sasl_port=b"993"))
    assert b"Auth-SASL" not in request


def test_failure_with_oauth_error_fields():
    result, _ = run_decide(b"Auth-Status: Invalid token\r\nAuth-Error-Status: invalid_token\r\n"
                           b"auth-error-scope: mail read\r\nAuth-Error-Schemes: bearer\r\n\r\n")
    assert result == AuthFailed(b"Invalid token", 0, None, {
        "status": "invalid_token", "scope": "mail read", "schemes": "bearer"})
    result, _ = run_decide(b"Auth-Status: Invalid token\r\n\r\n")
    assert result.oauth_error is None


def test_imap_id_is_sent_escaped_when_given():
    raw = b'("name" "Thunderbird" "x" "100%")'
    request = build_request(TARGET, (), facts(imap_id=raw))
    assert (b"Client-IP: 127.0.0.1\r\nAuth-IMAP-ID: "
            b'("name"%20"Thunderbird"%20"x"%20"100%25")\r\n') in request
    assert b"Auth-IMAP-ID" not in build_request(TARGET, (), facts())

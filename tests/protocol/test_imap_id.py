"""IMAP ID (RFC 2971) before login, mailgate's own: the answer from ``imap_id``, the
client's list to auth_http (``auth_http_pass_imap_id``) and to the backend with the
client's address (``proxy_imap_id``), and POP3's XCLIENT (``proxy_pop3_xclient``)."""

from __future__ import annotations

import pytest
from tests.protocol.harness import Harness, server_config

from mailgate.protocol import (
    AuthOK,
    AuthRequest,
    Endpoints,
    ImapServer,
    LoginDone,
    LoginFailed,
    Pop3Server,
)
from mailgate.protocol.imap import format_id, parse_id

ENDPOINTS = Endpoints("192.0.2.7", 50123, "127.0.0.1", 143)
THUNDERBIRD = b'("name" "Thunderbird" "version" "115.3.1" "os" NIL)'


def imap(impl, **settings) -> Harness:
    h = Harness(ImapServer(server_config("imap", **settings), implementation=impl))
    h.start()
    return h


@pytest.mark.parametrize("raw,fields", [
    (b"NIL", ()), (b"nil", ()), (b"()", ()),
    (b'("name" "x")', ((b"name", b"x"),)),
    (THUNDERBIRD, ((b"name", b"Thunderbird"), (b"version", b"115.3.1"), (b"os", None))),
    (b'("a\\"b" "c\\\\d")', ((b'a"b', b"c\\d"),)),
    (b'("k" "")', ((b"k", b""),)),
])
def test_parse_id(raw, fields):
    assert parse_id(raw) == fields
    assert parse_id(format_id(fields)) == fields


@pytest.mark.parametrize("raw", [
    b"", b"(", b")", b'("name")', b'("name" "x"', b'("name"  "x")', b'( "name" "x")',
    b'(NIL "x")', b'("a" "b" "c")', b'(name x)', b'("a\\x" "b")', b'("a" {3}',
    b'("' + b"n" * 31 + b'" "x")', b'("n" "' + b"v" * 1025 + b'")',
    b"(" + b" ".join(b'"f%d" "v"' % i for i in range(31)) + b")", b"NILL", b'("a" NILX)',
    # found by the imap_id fuzz target: CR LF inside a quoted string would have gone
    # on to the backend as a line break of the proxy's ID (an injected command)
    b'("na%\r\ne" "v")', b'("n" "a\nb")', b'("n" "a\0b")',
])
def test_parse_id_refuses(raw):
    assert parse_id(raw) is None


def test_id_nil_by_default(impl):
    h = imap(impl)
    assert h.feed(b"a1 ID NIL\r\n") == b"* ID NIL\r\na1 OK completed\r\n"
    assert h.feed(b"a2 id " + THUNDERBIRD + b"\r\n") == b"* ID NIL\r\na2 OK completed\r\n"
    assert h.m.client_id[0] == (b"name", b"Thunderbird") and h.m.errors == 0


def test_id_answer_from_imap_id(impl):
    h = imap(impl, imap_id=(("name", "mailgate"), ("support-url", "https://x/y z")))
    assert h.feed(b"a1 ID NIL\r\n") == (
        b'* ID ("name" "mailgate" "support-url" "https://x/y z")\r\na1 OK completed\r\n')
    assert format_id(((b"q", b'a"b\\c'),)) == b'("q" "a\\"b\\\\c")'


def test_malformed_id_is_bad_and_counts(impl):
    h = imap(impl, max_errors=3)
    assert h.feed(b'a1 ID ("name")\r\n') == b"a1 BAD invalid command\r\n"
    assert h.feed(b"a2 ID\r\n") == b"a2 BAD invalid command\r\n"
    too_many = b"(" + b" ".join(b'"f%d" "v"' % i for i in range(31)) + b")"
    assert h.feed(b"a3 ID " + too_many + b"\r\n") == b"a3 BAD invalid command\r\n"
    assert h.closed and h.m.errors == 3


def test_id_announcing_a_nonsync_literal_closes(impl):
    h = imap(impl)
    assert h.feed(b'a1 ID ("name" {5+}\r\nhello)\r\n') == b"a1 BAD invalid command\r\n"
    assert h.closed


def _logged_in(h: Harness, ok: AuthOK = AuthOK("127.0.0.1", 10143, password=b"pw")):
    assert h.feed(b'a9 LOGIN alice "secret"\r\n') == b""
    request = h.last(AuthRequest)
    h.call("auth_result", ok)
    return request


def test_client_id_goes_to_auth_http_only_when_asked(impl):
    h = imap(impl, auth_http_pass_imap_id=True)
    h.feed(b"a1 ID " + THUNDERBIRD + b"\r\n")
    assert _logged_in(h).imap_id == THUNDERBIRD
    h = imap(impl)
    h.feed(b"a1 ID " + THUNDERBIRD + b"\r\n")
    assert _logged_in(h).imap_id is None
    h = imap(impl, auth_http_pass_imap_id=True)     # no ID sent
    assert _logged_in(h).imap_id is None


def test_backend_gets_id_with_the_client_address(impl):
    h = imap(impl, proxy_imap_id=True)
    h.feed(b'a1 ID ("name" "Thunderbird" "x-originating-ip" "10.6.6.6")\r\n')
    _logged_in(h)
    backend = Harness(h.m.backend_login(ENDPOINTS))
    backend.start()
    assert backend.feed(b"* OK Dovecot ready.\r\n") == (
        b'mailgate-id ID ("name" "Thunderbird" "x-originating-ip" "192.0.2.7" '
        b'"x-originating-port" "50123" "x-connected-ip" "127.0.0.1" '
        b'"x-connected-port" "143")\r\n')
    assert backend.feed(b'* ID ("name" "Dovecot")\r\n') == b""
    assert backend.feed(b"mailgate-id OK ID completed.\r\n") == b"a9 LOGIN {5}\r\n"
    backend.feed(b"+ OK\r\n")
    backend.feed(b"+ OK\r\n")
    backend.feed(b"a9 OK Logged in\r\n")
    assert backend.last(LoginDone).to_client == b"a9 OK Logged in\r\n"


def test_backend_without_id_still_takes_the_login(impl):
    h = imap(impl, proxy_imap_id=True)
    _logged_in(h)
    backend = Harness(h.m.backend_login(ENDPOINTS))
    backend.start()
    assert backend.feed(b"* OK ready\r\n").startswith(b"mailgate-id ID (\"x-originating-ip\"")
    assert backend.feed(b"mailgate-id BAD unknown command\r\n") == b"a9 LOGIN {5}\r\n"


def test_no_id_without_proxy_imap_id_or_endpoints(impl):
    h = imap(impl)
    _logged_in(h)
    backend = Harness(h.m.backend_login(ENDPOINTS))
    backend.start()
    assert backend.feed(b"* OK ready\r\n") == b"a9 LOGIN {5}\r\n"
    h = imap(impl, proxy_imap_id=True)
    _logged_in(h)
    backend = Harness(h.m.backend_login(None))   # a UNIX-socket client: no address
    backend.start()
    assert backend.feed(b"* OK ready\r\n") == b"a9 LOGIN {5}\r\n"


def _pop3_backend(impl, endpoints=ENDPOINTS, **settings) -> Harness:
    h = Harness(Pop3Server(server_config("pop3", **settings), implementation=impl))
    h.start()
    h.feed(b"USER alice\r\nPASS secret\r\n")
    h.call("auth_result", AuthOK("127.0.0.1", 10110))
    backend = Harness(h.m.backend_login(endpoints))
    backend.start()
    return backend


def test_pop3_xclient(impl):
    backend = _pop3_backend(impl, proxy_pop3_xclient=True)
    assert backend.feed(b"+OK Dovecot ready.\r\n") == b"XCLIENT ADDR=192.0.2.7 PORT=50123\r\n"
    assert backend.feed(b"+OK\r\n") == b"USER alice\r\n"
    assert backend.feed(b"+OK\r\n") == b"PASS secret\r\n"
    backend.feed(b"+OK Logged in.\r\n")
    assert backend.last(LoginDone) is not None
    ipv6 = _pop3_backend(impl, Endpoints("2001:db8::1", 1, "::1", 110), proxy_pop3_xclient=True)
    assert ipv6.feed(b"+OK\r\n") == b"XCLIENT ADDR=2001:db8::1 PORT=1\r\n"
    # refused (not a trusted network): the login fails as a bad reply does
    refused = _pop3_backend(impl, proxy_pop3_xclient=True)
    refused.feed(b"+OK\r\n")
    refused.feed(b"-ERR You are not from trusted IP\r\n")
    assert refused.last(LoginFailed).to_client == b"-ERR internal server error\r\n"
    plain = _pop3_backend(impl)
    assert plain.feed(b"+OK\r\n") == b"USER alice\r\n"

"""Bytes through the relay: what the client fetches is what Dovecot stores, what the
client sends over SMTP is what the backend receives — including the 10 MB message over
TLS, bare LFs and dot-stuffing — and commands pipelined behind the login reach the
backend."""

from __future__ import annotations

import base64
import re

import pytest

from tests.support.clients import imap_fetch, imap_login, open_imap, open_pop3, pop3_retr
from tests.support.configs import STANDARD
from tests.support.messages import DOT_MESSAGE, EIGHT_BIT_MESSAGE
from tests.support.transcript import ReadEOF, ReadLine, ReadTagged, ReadUntil, StartTLS, run_script
from tests.support.users import ALICE, BULK


@pytest.fixture
def running(gate):
    return gate.start(STANDARD)


def test_imaps_fetch_of_10_mb(running, dovecot, tls_client_context):
    with open_imap(*running.address("imaps"), security="ssl", context=tls_client_context) as imap:
        imap_login(imap, BULK)
        imap.select("INBOX", readonly=True)
        assert imap_fetch(imap, "1") == dovecot.delivered(BULK.login)[0].data


def test_pop3s_retr_of_10_mb(running, dovecot, tls_client_context):
    client = open_pop3(*running.address("pop3s"), security="ssl", context=tls_client_context)
    try:
        client.user(BULK.login)
        client.pass_(BULK.password)
        assert pop3_retr(client, 1) == dovecot.delivered(BULK.login)[0].data
    finally:
        client.quit()


def test_imap_raw_fetch_is_the_stored_file(running, dovecot):
    """The whole FETCH answer, as Dovecot sends it, with the literal being the file."""
    script = [ReadLine(), b"a1 LOGIN alice alice-secret\r\n", ReadTagged(b"a1"),
              b"a2 EXAMINE INBOX\r\n", ReadTagged(b"a2")]
    for number in (1, 2, 3):
        script += [b"a%d FETCH %d BODY.PEEK[]\r\n" % (number + 2, number),
                   ReadTagged(b"a%d" % (number + 2))]
    transcript = run_script(running.address("imap"), script + [b"z LOGOUT\r\n", ReadEOF()])
    for number, stored in enumerate(dovecot.delivered(ALICE.login), 1):
        literal = b"* %d FETCH (BODY[] {%d}\r\n%s)\r\n" % (number, len(stored.data), stored.data)
        assert literal in transcript.received
    assert re.search(rb"\* BYE Logging out\r\nz OK Logout completed[^\n]*\r\n\Z",
                     transcript.received)


def test_pop3_raw_retr_is_dot_stuffed_on_the_wire(running, dovecot):
    transcript = run_script(running.address("pop3"), [
        ReadLine(), b"USER alice\r\n", ReadLine(), b"PASS alice-secret\r\n", ReadLine(),
        b"RETR 2\r\n", ReadUntil(b"\r\n.\r\n"), b"RETR 3\r\n", ReadUntil(b"\r\n.\r\n"),
        b"QUIT\r\n", ReadEOF()])
    replies = transcript.replies()
    assert replies[3] == b"+OK %d octets\r\n" % len(DOT_MESSAGE) + (
        DOT_MESSAGE.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    assert replies[4] == b"+OK %d octets\r\n%s.\r\n" % (len(EIGHT_BIT_MESSAGE), EIGHT_BIT_MESSAGE)


def _plain(login: bytes, password: bytes) -> bytes:
    return base64.b64encode(b"\0" + login + b"\0" + password)


# DATA exactly as the client sends it: dot-stuffed lines, a lone "..", bare LFs (one
# followed by a dot, which RFC 5321 does not stuff), 8-bit bytes, a bare CR.
RAW_DATA = (
    b"Subject: raw\r\n\r\n..leading dot\r\n..\r\nbare\nLF\r\nbare LF then dot\n.x\r\n"
    b"caf\xc3\xa9 \xff\r\nbare\rCR\r\n"
)
RECORDED = (
    b"Subject: raw\r\n\r\n.leading dot\r\n.\r\nbare\nLF\r\nbare LF then dot\n.x\r\n"
    b"caf\xc3\xa9 \xff\r\nbare\rCR\r\n"
)


@pytest.mark.parametrize("security", ["plain", "starttls", "ssl"])
def test_smtp_data_arrives_byte_for_byte(running, smtp_backend, tls_client_context, security):
    login = [b"EHLO client.test\r\n", ReadUntil(re.compile(rb"^250 ", re.MULTILINE))]
    start = [ReadLine()]
    if security == "starttls":
        start += [*login, b"STARTTLS\r\n", ReadLine(), StartTLS()]
    script = start + login + [
        b"AUTH PLAIN " + _plain(b"alice", b"alice-secret") + b"\r\n", ReadLine(),
        # pipelined: envelope and DATA in one write
        b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n",
        ReadUntil(b"354"), RAW_DATA + b".\r\n", ReadLine(), b"QUIT\r\n", ReadEOF()]
    transcript = run_script(running.address("smtps" if security == "ssl" else "smtp"), script,
                            tls_context=tls_client_context, implicit_tls=security == "ssl")
    assert b"235 2.0.0 OK\r\n" in transcript.received
    [message] = smtp_backend.wait_for_messages(1)
    assert message.data == RECORDED
    [connection] = smtp_backend.connections()
    assert b"\r\nDATA\r\n" + RAW_DATA + b".\r\nQUIT\r\n" in bytes(connection.raw)


def test_imap_commands_pipelined_behind_login_reach_dovecot(running, dovecot):
    transcript = run_script(running.address("imap"), [
        ReadLine(),
        (b"a1 LOGIN alice alice-secret\r\na2 EXAMINE INBOX\r\na3 FETCH 1 BODY.PEEK[]\r\n"
        b"a4 LOGOUT\r\n"),
        ReadEOF()])
    received = transcript.received
    positions = [received.index(b"%s OK" % tag) for tag in (b"a1", b"a2", b"a3", b"a4")]
    assert positions == sorted(positions)
    assert dovecot.delivered(ALICE.login)[0].data in received


def test_pop3_commands_pipelined_behind_pass_reach_dovecot(running, dovecot):
    transcript = run_script(running.address("pop3"), [
        ReadLine(), b"USER alice\r\nPASS alice-secret\r\nSTAT\r\nRETR 1\r\nQUIT\r\n", ReadEOF()])
    stored = dovecot.delivered(ALICE.login)
    assert transcript.received.startswith(b"+OK POP3 ready <")
    assert b"\r\n+OK\r\n+OK Logged in.\r\n+OK %d %d\r\n" % (
        len(stored), sum(m.size for m in stored)) in transcript.received
    assert transcript.received.endswith(
        b"+OK %d octets\r\n%s.\r\n+OK Logging out.\r\n" % (stored[0].size, stored[0].data))

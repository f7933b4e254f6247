"""SMTP sessions, sans-I/O: exact transcripts (EHLO, AUTH, XCLIENT, MAIL/RCPT/DATA)."""

from __future__ import annotations

import base64

import pytest
from mailgate.demo import Limits, SmtpSession

from tests.demo.helpers import Transcript, make_store

EHLO = (b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE %d\r\n250-8BITMIME\r\n"
        b"250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n"
        b"250 XCLIENT NAME ADDR PORT PROTO HELO LOGIN\r\n")
GREETING = b"220 mx.test ESMTP mailgate demo\r\n"


def session(store=None, **limits) -> Transcript:
    t = Transcript(SmtpSession(store or make_store(), hostname="mx.test",
                               limits=Limits(**limits) if limits else None))
    assert t.greeting == GREETING
    return t


def ready(store=None, **limits) -> Transcript:
    t = session(store, **limits)
    size = limits.get("message_size", Limits().message_size)
    assert t.send(b"EHLO client.example\r\n") == EHLO % size
    return t


def test_helo_ehlo_and_simple_commands():
    t = session()
    assert t.send(b"MAIL FROM:<a@b.c>\r\n") == b"503 5.5.1 Error: send HELO/EHLO first\r\n"
    assert t.send(b"EHLO\r\n") == b"501 5.5.4 Syntax: EHLO hostname\r\n"
    assert t.send(b"HELO client.example\r\n") == b"250 mx.test\r\n"
    assert t.send(b"NOOP\r\nRSET\r\nVRFY alice\r\n") == (
        b"250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
        b"252 2.0.0 Cannot VRFY user, but will accept message\r\n")
    assert t.send(b"HELP\r\n").startswith(b"214 2.0.0 Commands:")
    assert t.send(b"STARTTLS\r\nBDAT 10 LAST\r\n") == (
        b"502 5.5.1 Error: command not implemented\r\n" * 2)
    assert t.send(b"FROB\r\n\r\n") == b"500 5.5.2 Error: command not recognized\r\n" * 2
    assert t.send(b"quit\r\n") == b"221 2.0.0 Bye\r\n"
    assert t.closed


def test_pipelined_transaction_delivers_exact_bytes():
    store = make_store()
    t = ready(store)
    # as sent: a lone leading dot is removed too, stuffed or not
    message = (b"Subject: t\r\n\r\n..stuffed\r\n.unstuffed\r\nbare\nLF\n"
               b"..after bare LF\n\r\nlast\r\n")
    delivered = (b"Subject: t\r\n\r\n.stuffed\r\nunstuffed\r\nbare\nLF\n"
                 b".after bare LF\n\r\nlast\r\n")
    out = t.send(b"MAIL FROM:<sender@example.net> SIZE=100 BODY=8BITMIME\r\n"
                 b"RCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\n"
                 b"RCPT TO:<ALICE@localhost>\r\nRCPT TO:<bob@EXAMPLE.com>\r\nDATA\r\n"
                 + message + b".\r\nQUIT\r\n")
    assert out == (b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                   b"550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown\r\n"
                   b"250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                   + out[out.index(b"250 2.0.0 Ok: queued as "):])
    assert out.endswith(b"\r\n221 2.0.0 Bye\r\n")
    assert store.messages("alice")[-1] == delivered           # once, though named twice
    assert store.messages("bob") == [delivered]
    assert len(store.messages("alice")) == 4


def test_data_end_needs_crlf_dot_crlf():
    store = make_store()
    t = ready(store)
    t.send(b"MAIL FROM:<>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
    # a dot line after a bare LF, or ended by a bare LF, does not end the data
    assert t.send(b"a\n.\r\nb\r\n.\n") == b""
    assert t.send(b"c\r\n.") == b""
    assert t.send(b"\r\n").startswith(b"250 2.0.0 Ok: queued as ")
    assert store.messages("bob") == [b"a\n\r\nb\r\n\nc\r\n"]
    t.send(b"MAIL FROM:<>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
    assert t.send(b".\r\n").startswith(b"250 ")                # an empty message
    assert store.messages("bob")[-1] == b""


def test_transaction_sequence_errors():
    t = ready()
    assert t.send(b"RCPT TO:<alice@x>\r\n") == b"503 5.5.1 Error: need MAIL command\r\n"
    assert t.send(b"DATA\r\n") == b"503 5.5.1 Error: need MAIL command\r\n"
    assert t.send(b"MAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\n") == (
        b"250 2.1.0 Ok\r\n503 5.5.1 Error: nested MAIL command\r\n")
    assert t.send(b"DATA\r\n") == b"503 5.5.1 Error: need RCPT command\r\n"
    assert t.send(b"RCPT TO:<nobody@x>\r\nDATA\r\n").endswith(
        b"554 5.5.1 Error: no valid recipients\r\n")
    assert t.send(b"RCPT TO:<alice@x>\r\nDATA x\r\n") == (
        b"250 2.1.5 Ok\r\n501 5.5.4 Syntax: DATA\r\n")
    assert t.send(b"RSET\r\nRCPT TO:<alice@x>\r\n") == (
        b"250 2.0.0 Ok\r\n503 5.5.1 Error: need MAIL command\r\n")
    assert t.send(b"MAIL FROM:a@b\r\nRCPT TO:alice@x\r\nEHLO again\r\nRCPT TO:<alice@x>\r\n") \
        .endswith(b"503 5.5.1 Error: need MAIL command\r\n")      # EHLO resets


@pytest.mark.parametrize("line, reply", [
    (b"MAIL FROM <a@b>", b"501 5.5.4 Syntax: MAIL FROM:<address>"),
    (b"MAIL TO:<a@b>", b"501 5.5.4 Syntax: MAIL FROM:<address>"),
    (b"MAIL FROM:<a b@c>", b"501 5.1.7 Bad sender address syntax"),
    (b"MAIL FROM:<a@b> SIZE=99999999999", b"552 5.3.4 Message size exceeds fixed limit"),
    (b"MAIL FROM:<a@b> SIZE=x", b"555 5.5.4 Unsupported option: SIZE=x"),
    (b"MAIL FROM:<a@b> RET=FULL", b"555 5.5.4 Unsupported option: RET=FULL"),
    (b"MAIL FROM:<a@b> BODY=BINARYMIME", b"555 5.5.4 Unsupported option: BODY=BINARYMIME"),
    (b"MAIL FROM:  <@relay.example:a@b> AUTH=<>", b"250 2.1.0 Ok"),
])
def test_mail_from_syntax(line, reply):
    assert ready().send(line + b"\r\n") == reply + b"\r\n"


@pytest.mark.parametrize("line, reply", [
    (b"RCPT TO:<>", b"501 5.1.3 Bad recipient address syntax"),
    (b"RCPT TO <alice@x>", b"501 5.5.4 Syntax: RCPT TO:<address>"),
    (b"RCPT TO:<alice@x> NOTIFY=NEVER", b"555 5.5.4 Unsupported option: NOTIFY=NEVER"),
    (b"RCPT TO:<Robert@example.org>", b"250 2.1.5 Ok"),           # bob's listed address
    (b"RCPT TO:<bob@other.example>",
     b"550 5.1.1 <bob@other.example>: Recipient address rejected: User unknown"),
    (b"RCPT TO:<postmaster>",
     b"550 5.1.1 <postmaster>: Recipient address rejected: User unknown"),
])
def test_rcpt_to(line, reply):
    t = ready()
    t.send(b"MAIL FROM:<a@b>\r\n")
    assert t.send(line + b"\r\n") == reply + b"\r\n"


def test_too_many_recipients():
    t = ready(max_recipients=1)
    assert t.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\nRCPT TO:<bob@example.com>\r\n") \
        .endswith(b"452 4.5.3 Error: too many recipients\r\n")


def test_auth_plain_and_login():
    plain = base64.b64encode(b"\0alice\0wonder land")
    t = ready()
    assert t.send(b"AUTH PLAIN\r\n") == b"334 \r\n"
    assert t.send(plain + b"\r\n") == b"235 2.7.0 Authentication successful\r\n"
    assert t.session.user == "alice"
    assert t.send(b"AUTH PLAIN " + plain + b"\r\n") == b"503 5.5.1 Error: already authenticated\r\n"
    t = ready()
    assert t.send(b"AUTH LOGIN\r\n") == b"334 VXNlcm5hbWU6\r\n"
    assert t.send(base64.b64encode(b"bob") + b"\r\n") == b"334 UGFzc3dvcmQ6\r\n"
    assert t.send(base64.b64encode(b"builder") + b"\r\n") == (
        b"235 2.7.0 Authentication successful\r\n")
    t = ready()
    assert t.send(b"AUTH LOGIN " + base64.b64encode(b"bob") + b"\r\n") == b"334 UGFzc3dvcmQ6\r\n"
    assert t.send(base64.b64encode(b"wrong") + b"\r\n") == (
        b"535 5.7.8 Error: authentication failed\r\n")
    assert t.send(b"AUTH PLAIN\r\n*\r\n") == b"334 \r\n501 5.7.0 Authentication aborted\r\n"
    assert t.send(b"AUTH LOGIN\r\n@@\r\n") == (
        b"334 VXNlcm5hbWU6\r\n501 5.5.2 Cannot decode the AUTH LOGIN response\r\n")
    assert t.send(b"AUTH PLAIN Zm9v\r\n") == b"501 5.5.2 Cannot decode the AUTH PLAIN response\r\n"
    assert t.send(b"AUTH CRAM-MD5\r\n") == b"504 5.5.4 Unsupported authentication mechanism\r\n"
    assert t.send(b"MAIL FROM:<a@b>\r\nAUTH PLAIN\r\n").endswith(
        b"503 5.5.1 Error: MAIL transaction in progress\r\n")
    assert session().send(b"AUTH PLAIN\r\n") == b"503 5.5.1 Error: send HELO/EHLO first\r\n"


def test_xclient_as_nginx_sends_it():
    t = session()
    assert t.send(b"EHLO mx.test\r\n") == EHLO % Limits().message_size
    assert t.send(b"XCLIENT ADDR=127.0.0.1 LOGIN=good+2Bone NAME=[UNAVAILABLE]\r\n") == GREETING
    assert t.session.xclient == {"ADDR": b"127.0.0.1", "LOGIN": b"good+one",
                                 "NAME": b"[UNAVAILABLE]"}
    assert t.session.user == "good+one"
    assert t.send(b"MAIL FROM:<a@b>\r\n") == b"503 5.5.1 Error: send HELO/EHLO first\r\n"
    assert t.send(b"EHLO client.example\r\n").startswith(b"250-mx.test\r\n")
    assert t.send(b"XCLIENT ADDR=IPV6:::1 NAME=host.example\r\n") == GREETING
    assert t.send(b"HELO again\r\nMAIL FROM:<a@b>\r\nXCLIENT ADDR=1.2.3.4\r\n") == (
        b"250 mx.test\r\n250 2.1.0 Ok\r\n503 5.5.1 Error: MAIL transaction in progress\r\n")
    t = ready()
    assert t.send(b"XCLIENT\r\n") == b"501 5.5.4 Syntax: XCLIENT attribute=value ...\r\n"
    assert t.send(b"XCLIENT FOO=bar\r\n") == b"501 5.5.4 Bad XCLIENT attribute: FOO\r\n"
    assert t.send(b"XCLIENT LOGIN=a+zz\r\n") == b"501 5.5.4 Bad XCLIENT attribute: LOGIN\r\n"
    assert t.send(b"XCLIENT ADDR\r\n") == b"501 5.5.4 Bad XCLIENT attribute: ADDR\r\n"


def test_message_size_limit():
    store = make_store()
    t = ready(store, message_size=1000)
    t.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
    assert t.send(b"x" * 600 + b"\r\n" + b"y" * 600 + b"\r\n") == b""
    assert t.send(b".\r\n") == b"552 5.3.4 Message size exceeds fixed limit\r\n"
    # one line longer than the limit, arriving in pieces, is dropped too
    t.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
    for _ in range(5):
        assert t.send(b"z" * 700) == b""
    assert t.send(b"\r\n.\r\n") == b"552 5.3.4 Message size exceeds fixed limit\r\n"
    # and so is one that arrives whole
    t.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
    assert t.send(b"w" * 1500 + b"\r\n.\r\n") == b"552 5.3.4 Message size exceeds fixed limit\r\n"
    t.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
    assert t.send(b"small\r\n.\r\n").startswith(b"250 2.0.0 Ok")
    assert store.messages("bob") == [b"small\r\n"]


def test_long_command_lines_and_too_many_errors():
    t = ready(line_length=512, max_errors=3)
    assert t.send(b"NOOP " + b"x" * 1000) == b"500 5.5.0 Error: line too long\r\n"
    assert t.send(b"x" * 1000 + b"\r\nNOOP\r\n") == b"250 2.0.0 Ok\r\n"
    assert t.send(b"FOO\r\nBAR\r\nNOOP\r\n") == (
        b"500 5.5.2 Error: command not recognized\r\n"
        b"500 5.5.2 Error: command not recognized\r\n"
        b"421 4.7.0 mx.test Error: too many errors\r\n")
    assert t.closed


def test_goodbyes():
    assert session().session.timed_out() == b"421 4.4.2 mx.test Error: timeout exceeded\r\n"
    assert session().session.shutdown() == b"421 4.3.2 mx.test Service shutting down\r\n"
    assert SmtpSession(make_store()).refuse() == (
        b"421 4.7.0 localhost Error: too many connections\r\n")

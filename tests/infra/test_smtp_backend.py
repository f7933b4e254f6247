"""The recording SMTP backend: XCLIENT like Postfix, exact DATA, AUTH, rejections."""

from __future__ import annotations

import base64
import smtplib

import pytest

from tests.support.clients import open_smtp
from tests.support.smtp_backend import xtext_decode
from tests.support.transcript import ReadLine, run_script
from tests.support.users import BOB, JOERG


def test_ehlo_advertises_xclient_and_auth(smtp_backend):
    with open_smtp(smtp_backend.host, smtp_backend.port) as client:
        code, _ = client.ehlo("client.test")
        assert code == 250
        assert client.has_extn("xclient") and "PLAIN" in client.esmtp_features["auth"]


def test_xclient_greets_anew_and_forgets_helo(smtp_backend):
    with open_smtp(smtp_backend.host, smtp_backend.port) as client:
        client.ehlo("client.test")
        code, text = client.docmd("XCLIENT", "ADDR=127.0.0.1 LOGIN=j+C3+B6rg NAME=[UNAVAILABLE]")
        assert (code, text) == (220, b"backend.test ESMTP mailgate test backend")
        code, _ = client.docmd("MAIL", "FROM:<a@example.test>")
        assert code == 503  # HELO is needed again, as with Postfix
        client.ehlo("again.test")
        client.sendmail("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\nbody\r\n")
    [connection] = smtp_backend.connections()
    assert connection.verbs() == ["EHLO", "XCLIENT", "MAIL", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert connection.xclient == {"ADDR": "127.0.0.1", "LOGIN": "jörg", "NAME": "[UNAVAILABLE]"}
    [message] = smtp_backend.messages()
    assert message.helo == "again.test" and message.xclient["LOGIN"] == "jörg"


def test_data_is_recorded_dot_unstuffed_with_bare_lf_kept(smtp_backend):
    wire = b"..leading\r\n.\nbare LF then dot\r\nplain\nbare\r\n...\r\n"
    transcript = run_script(
        (smtp_backend.host, smtp_backend.port),
        [
            ReadLine(),
            b"HELO client.test\r\n",
            ReadLine(),
            b"MAIL FROM:<a@example.test>\r\n",
            ReadLine(),
            b"RCPT TO:<b@example.test>\r\n",
            ReadLine(),
            b"DATA\r\n",
            ReadLine(),
            wire + b".\r\n",
            ReadLine(),
            b"QUIT\r\n",
            ReadLine(),
        ],
    )
    assert transcript.replies()[-2] == b"250 2.0.0 OK queued\r\n"
    [message] = smtp_backend.wait_for_messages(1)
    # RFC 5321 4.5.2: one leading dot is removed from each CRLF-delimited line only.
    assert message.data == b".leading\r\n\nbare LF then dot\r\nplain\nbare\r\n..\r\n"
    assert (message.mail_from, message.rcpt_tos) == ("a@example.test", ["b@example.test"])
    assert smtp_backend.connections()[0].raw.endswith(wire + b".\r\nQUIT\r\n")


def _auth_plain(backend, login, password):
    blob = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
    with open_smtp(backend.host, backend.port) as client:
        client.ehlo("client.test")
        return client.docmd("AUTH", f"PLAIN {blob}")


def test_auth_plain_with_known_and_unknown_credentials(smtp_backend):
    assert _auth_plain(smtp_backend, JOERG.login, JOERG.password)[0] == 235
    assert _auth_plain(smtp_backend, BOB.login, "wrong")[0] == 535
    smtp_backend.reject_auth = True
    assert _auth_plain(smtp_backend, BOB.login, BOB.password)[0] == 535
    with (
        open_smtp(smtp_backend.host, smtp_backend.port) as client,
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        client.login(BOB.login, BOB.password)  # smtplib tries PLAIN, then LOGIN
    logins = [c.login for c in smtp_backend.connections()]
    attempts = [a for c in smtp_backend.connections() for a in c.auth_attempts]
    assert logins == [JOERG.login, None, None, None]
    assert attempts[:3] == [
        (JOERG.login, JOERG.password),
        (BOB.login, "wrong"),
        (BOB.login, BOB.password),
    ]


def test_rejected_recipient_gets_the_given_reply(smtp_backend):
    smtp_backend.reject_rcpt["nobody@example.test"] = "550 5.1.1 No such user"
    with open_smtp(smtp_backend.host, smtp_backend.port) as client:
        refused = client.sendmail(
            "a@example.test",
            ["nobody@example.test", "b@example.test"],
            b"Subject: x\r\n\r\nbody\r\n",
        )
    assert refused == {"nobody@example.test": (550, b"5.1.1 No such user")}
    assert smtp_backend.messages()[0].rcpt_tos == ["b@example.test"]


def test_rejected_xclient(smtp_backend):
    smtp_backend.reject_xclient = True
    with open_smtp(smtp_backend.host, smtp_backend.port) as client:
        client.ehlo("client.test")
        assert client.docmd("XCLIENT", "ADDR=127.0.0.1")[0] == 550


def test_xtext_decoding():
    assert xtext_decode("a+2Bb+3Dc") == "a+b=c"
    assert xtext_decode("plain") == "plain"

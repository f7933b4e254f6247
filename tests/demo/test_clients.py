"""Python's imaplib, poplib and smtplib against the demo server, on asyncio and uvloop."""

from __future__ import annotations

import imaplib
import poplib
import smtplib

import pytest

from tests.demo.helpers import BARE_LF, MULTIPART, PASSWORD, SIMPLE


def imap(server) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    client.login("alice", PASSWORD)
    return client


def fetched(data) -> list[bytes]:
    """The literal payloads of an imaplib FETCH answer."""
    return [part[1] for part in data if isinstance(part, tuple)]


# -- IMAP ------------------------------------------------------------------------

def test_imap_login_select_fetch_exact_bytes(server):
    client = imap(server)
    typ, data = client.select("INBOX")
    assert (typ, data) == ("OK", [b"3"])
    assert client.untagged_responses["UIDVALIDITY"][0].isdigit()
    typ, data = client.fetch("1:3", "(BODY.PEEK[])")
    assert typ == "OK" and fetched(data) == [SIMPLE, MULTIPART, BARE_LF]
    typ, data = client.fetch("1", "(RFC822.SIZE FLAGS)")
    assert data == [b"1 (RFC822.SIZE %d FLAGS (\\Recent))" % len(SIMPLE)]
    client.logout()


def test_imap_login_with_literals_and_quoted_password(server):
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    client.literal = PASSWORD.encode()            # imaplib sends the next argument as {n}
    typ, _ = client._simple_command("LOGIN", "alice")
    assert typ == "OK"
    client.logout()
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    assert client.login("alice", PASSWORD)[0] == "OK"     # imaplib quotes "wonder land"
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imaplib.IMAP4("127.0.0.1", server.ports["imap"]).login("alice", "wrong")


def test_imap_authenticate_plain(server):
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    typ, _ = client.authenticate("PLAIN", lambda _: b"\0alice\0" + PASSWORD.encode())
    assert typ == "OK" and client.state == "AUTH"
    client.logout()


def test_imap_sections_and_seen(server):
    client = imap(server)
    client.select()
    _, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT TO)])")
    assert fetched(data) == [b"To: bob@example.com\r\nSubject: lunch\r\n\r\n"]
    _, data = client.fetch("2", "(BODY.PEEK[2.MIME] BODY.PEEK[2] BODY.PEEK[TEXT]<0.8>)")
    assert fetched(data) == [
        (b"Content-Type: application/octet-stream\r\n"
         b"Content-Disposition: attachment; filename=\"r.bin\"\r\n"
         b"Content-Transfer-Encoding: base64\r\n\r\n"),
        b"AAECAw==", b"preamble"]
    assert client.fetch("1", "(FLAGS)")[1] == [b"1 (FLAGS (\\Recent))"]
    _, data = client.fetch("1", "(BODY[TEXT])")
    assert fetched(data) == [SIMPLE[SIMPLE.index(b"\r\n\r\n") + 4:]]
    assert b"\\Seen" in data[-1]                  # the implicit flag change is reported
    _, data = client.fetch("1", "(UID ENVELOPE)")
    assert b'"lunch"' in data[0] and b'(("Alice Example" NIL "alice" "example.com"))' in data[0]
    client.logout()


def test_imap_store_search_expunge(server):
    client = imap(server)
    client.select()
    assert client.search(None, "UNSEEN") == ("OK", [b"1 2 3"])
    _, data = client.store("1:2", "+FLAGS", "(\\Seen)")
    assert data == [b"1 (FLAGS (\\Recent \\Seen))", b"2 (FLAGS (\\Recent \\Seen))"]
    assert client.search(None, "SEEN") == ("OK", [b"1 2"])
    assert client.search(None, "UNSEEN") == ("OK", [b"3"])
    assert client.search(None, '(OR SUBJECT "lunch" FROM bob) NOT 2') == ("OK", [b"1"])
    assert client.store("2", "FLAGS.SILENT", "(\\Deleted)") == ("OK", [None])
    assert client.expunge() == ("OK", [b"2"])
    assert server.store.messages("alice") == [SIMPLE, BARE_LF]
    assert client.search(None, "ALL") == ("OK", [b"1 2"])
    client.logout()


def test_imap_uid_commands(server):
    client = imap(server)
    client.select()
    assert client.uid("SEARCH", None, "UID 2:*") == ("OK", [b"2 3"])
    _, data = client.uid("FETCH", "3", "(BODY.PEEK[])")
    assert data[0][0].startswith(b"3 (UID 3 BODY[] ") and data[0][1] == BARE_LF
    _, data = client.uid("STORE", "1,3", "+FLAGS", "(\\Deleted)")
    assert data == [b"1 (UID 1 FLAGS (\\Deleted \\Recent))",
                    b"3 (UID 3 FLAGS (\\Deleted \\Recent))"]
    assert client.uid("EXPUNGE", "3")[0] == "OK"
    assert client.uid("SEARCH", None, "ALL") == ("OK", [b"1 2"])
    assert client.uid("COPY", "1:2", "INBOX")[0] == "OK"
    assert client.response("COPYUID")[1][0].split()[1:] == [b"1:2", b"4:5"]
    client.logout()


def test_imap_append_and_list(server):
    client = imap(server)
    message = b"Subject: appended\r\n\r\nbody with {braces} and \"quotes\"\r\n"
    typ, data = client.append("INBOX", "(\\Flagged)", '"05-Mar-2025 10:00:00 +0000"', message)
    assert typ == "OK" and data[0].startswith(b"[APPENDUID ")
    assert server.store.messages("alice")[-1] == message
    assert client.list() == ("OK", [b'(\\HasNoChildren) "/" "INBOX"'])
    assert client.lsub() == ("OK", [b'(\\HasNoChildren) "/" "INBOX"'])
    assert client.status("INBOX", "(MESSAGES UIDNEXT UNSEEN)") == (
        "OK", [b'"INBOX" (MESSAGES 4 UIDNEXT 5 UNSEEN 4)'])
    client.select(readonly=True)
    _, data = client.fetch("4", "(FLAGS INTERNALDATE)")
    assert data == [b'4 (FLAGS (\\Flagged \\Recent) INTERNALDATE " 5-Mar-2025 10:00:00 +0000")']
    typ, data = client.store("1", "+FLAGS", "(\\Seen)")
    assert typ == "NO" and data[0].startswith(b"[READ-ONLY]")
    client.close()
    client.logout()


# -- POP3 ------------------------------------------------------------------------

def pop3(server) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    client.user("alice")
    client.pass_(PASSWORD)
    return client


def test_pop3_stat_list_uidl(server):
    client = pop3(server)
    sizes = [len(SIMPLE), len(MULTIPART), len(BARE_LF)]
    assert client.stat() == (3, sum(sizes))
    _, listing, _ = client.list()
    assert listing == [b"%d %d" % (i, s) for i, s in enumerate(sizes, 1)]
    _, uidls, _ = client.uidl()
    assert [u.split()[0] for u in uidls] == [b"1", b"2", b"3"]
    assert len({u.split()[1] for u in uidls}) == 3
    assert client.capa()["SASL"] == ["PLAIN"]
    client.quit()


def test_pop3_retr_is_exact_with_dot_stuffing(server):
    client = pop3(server)
    _, lines, _ = client.retr(1)
    # poplib removes the stuffing and splits at line ends: joining gives the message back
    assert b"\r\n".join(lines) + b"\r\n" == SIMPLE
    _, lines, _ = client.retr(3)
    assert b"\n".join(lines) + b"\n" == BARE_LF
    _, lines, _ = client.top(2, 1)
    assert b"\r\n".join(lines) + b"\r\n" == MULTIPART[:MULTIPART.index(b"--XYZ\r\n")]
    client.quit()


def test_pop3_dele_quit_and_rset(server):
    client = pop3(server)
    client.dele(1)
    with pytest.raises(poplib.error_proto, match="deleted"):
        client.retr(1)
    client.rset()
    client.dele(2)
    client.quit()
    assert server.store.messages("alice") == [SIMPLE, BARE_LF]


def test_pop3_wrong_password(server):
    client = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    client.user("alice")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.pass_("wrong")
    client.quit()


# -- SMTP ------------------------------------------------------------------------

def test_smtp_send_byte_for_byte(server):
    message = (b"From: x@example.net\r\nSubject: dots\r\n\r\n"
               b".leading dot\r\n..two\r\nbare\nLF line\n.dot after bare LF\r\n.\r\nend\r\n")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        code, _ = client.ehlo("client.example")
        assert code == 250
        for ext in ("pipelining", "8bitmime", "size", "auth", "xclient"):
            assert client.has_extn(ext)
        assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        refused = client.sendmail("x@example.net", ["alice@example.com", "nobody@example.com"],
                                  message)
        assert refused == {"nobody@example.com": (
            550, b"5.1.1 <nobody@example.com>: Recipient address rejected: User unknown")}
    assert server.store.messages("alice")[-1] == message


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_smtp_auth(server, mechanism):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as client:
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("alice", "nope")
        client.user, client.password = "alice", PASSWORD
        code, _ = client.auth(mechanism, getattr(client, "auth_" + mechanism.lower()),
                              initial_response_ok=mechanism == "PLAIN")
        assert code == 235
        client.sendmail("alice@example.com", ["Robert@example.ORG"], b"Subject: hi\r\n\r\nx\r\n")
    assert server.store.messages("bob") == [b"Subject: hi\r\n\r\nx\r\n"]

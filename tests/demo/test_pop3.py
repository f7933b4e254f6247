"""POP3 sessions, sans-I/O: exact transcripts of RFC 1939 with CAPA, UIDL, TOP, AUTH PLAIN."""

from __future__ import annotations

import base64

from mailgate.demo import Limits, Pop3Session

from tests.demo.helpers import BARE_LF, MULTIPART, PASSWORD, SIMPLE, Transcript, make_store

CAPA = (b"+OK Capability list follows\r\nUSER\r\nUIDL\r\nTOP\r\nRESP-CODES\r\nPIPELINING\r\n"
        b"SASL PLAIN\r\nIMPLEMENTATION mailgate-demo\r\n.\r\n")


def session(store=None, **limits) -> Transcript:
    t = Transcript(Pop3Session(store or make_store(), hostname="mx.test",
                               limits=Limits(**limits) if limits else None))
    assert t.greeting == b"+OK mx.test POP3 server ready (mailgate demo)\r\n"
    return t


def logged_in(store=None, **limits) -> Transcript:
    t = session(store, **limits)
    assert t.send(b"USER alice\r\nPASS wonder land\r\n") == b"+OK\r\n+OK Logged in.\r\n"
    return t


def test_authorization_state():
    t = session()
    assert t.send(b"capa\r\n") == CAPA
    assert t.send(b"STAT\r\n") == b"-ERR Command not valid now.\r\n"
    assert t.send(b"PASS x\r\n") == b"-ERR USER first.\r\n"
    assert t.send(b"USER\r\n") == b"-ERR USER needs a name.\r\n"
    assert t.send(b"USER alice\r\nPASS wonder\r\n") == (
        b"+OK\r\n-ERR [AUTH] Authentication failed.\r\n")
    assert t.send(b"PASS wonder land\r\n") == b"-ERR USER first.\r\n"     # USER is used up
    assert t.send(b"APOP alice 0123\r\n") == b"-ERR Unknown command.\r\n"
    assert t.send(b"USER alice\r\nPASS " + PASSWORD.encode() + b"\r\n") == (
        b"+OK\r\n+OK Logged in.\r\n")
    assert t.send(b"USER alice\r\n") == b"-ERR Command not valid now.\r\n"
    assert t.send(b"CAPA\r\n") == CAPA


def test_auth_plain():
    good = base64.b64encode(b"\0alice\0wonder land")
    t = session()
    assert t.send(b"AUTH PLAIN\r\n") == b"+ \r\n"
    assert t.send(good + b"\r\n") == b"+OK Logged in.\r\n"
    t = session()
    assert t.send(b"AUTH PLAIN " + good + b"\r\n") == b"+OK Logged in.\r\n"
    t = session()
    assert t.send(b"AUTH PLAIN\r\n*\r\n") == b"+ \r\n-ERR Authentication cancelled.\r\n"
    assert t.send(b"AUTH PLAIN !!\r\n") == b"-ERR Invalid SASL PLAIN response.\r\n"
    assert t.send(b"AUTH PLAIN " + base64.b64encode(b"alice") + b"\r\n") == (
        b"-ERR Malformed SASL PLAIN response.\r\n")
    assert t.send(b"AUTH LOGIN\r\n") == b"-ERR Unsupported authentication mechanism.\r\n"
    assert t.send(b"AUTH\r\n") == b"-ERR Unsupported authentication mechanism.\r\n"


def test_stat_list_uidl():
    store = make_store()
    validity = store.mailbox("alice").uidvalidity
    t = logged_in(store)
    sizes = (len(SIMPLE), len(MULTIPART), len(BARE_LF))
    assert t.send(b"STAT\r\n") == b"+OK 3 %d\r\n" % sum(sizes)
    assert t.send(b"LIST\r\n") == b"+OK\r\n1 %d\r\n2 %d\r\n3 %d\r\n.\r\n" % sizes
    assert t.send(b"LIST 2\r\n") == b"+OK 2 %d\r\n" % sizes[1]
    assert t.send(b"UIDL\r\n") == (
        b"+OK\r\n1 %d.1\r\n2 %d.2\r\n3 %d.3\r\n.\r\n" % ((validity,) * 3))
    assert t.send(b"UIDL 3\r\n") == b"+OK 3 %d.3\r\n" % validity
    assert t.send(b"LIST 4\r\nLIST 0\r\nLIST x\r\nLIST 1 2\r\n") == (
        b"-ERR No such message.\r\n-ERR No such message.\r\n-ERR Invalid message number.\r\n"
        b"-ERR Wrong number of arguments.\r\n")


def test_retr_and_top_are_dot_stuffed():
    t = logged_in()
    stuffed = SIMPLE.replace(b"\r\n.", b"\r\n..")
    assert t.send(b"RETR 1\r\n") == b"+OK %d octets\r\n%s.\r\n" % (len(SIMPLE), stuffed)
    assert t.send(b"RETR 3\r\n") == (
        b"+OK %d octets\r\n%s.\r\n" % (len(BARE_LF), BARE_LF.replace(b"\n.", b"\n..")))
    header = SIMPLE[:SIMPLE.index(b"\r\n\r\n") + 4]
    assert t.send(b"TOP 1 0\r\n") == b"+OK\r\n" + header + b".\r\n"
    assert t.send(b"TOP 1 2\r\n") == (
        b"+OK\r\n" + header + b"Shall we?\r\n..a line that starts with a dot\r\n.\r\n")
    assert t.send(b"TOP 1 99\r\n") == b"+OK\r\n" + stuffed + b".\r\n"
    assert t.send(b"TOP 1\r\nTOP 1 x\r\n") == (
        b"-ERR Wrong number of arguments.\r\n-ERR Invalid line count.\r\n")


def test_message_without_final_line_end_gets_one_before_the_terminator():
    store = make_store()
    store.deliver("bob", b"Subject: x\r\n\r\nno end")
    t = session(store)
    t.send(b"USER bob\r\nPASS builder\r\n")
    assert t.send(b"RETR 1\r\n") == b"+OK 20 octets\r\nSubject: x\r\n\r\nno end\r\n.\r\n"


def test_dele_rset_quit():
    store = make_store()
    t = logged_in(store)
    assert t.send(b"DELE 2\r\n") == b"+OK Message 2 deleted.\r\n"
    assert t.send(b"DELE 2\r\nRETR 2\r\nLIST 2\r\n") == b"-ERR Message 2 is deleted.\r\n" * 3
    assert t.send(b"STAT\r\nLIST\r\n") == (
        b"+OK 2 %d\r\n+OK\r\n1 %d\r\n3 %d\r\n.\r\n" % (
            len(SIMPLE) + len(BARE_LF), len(SIMPLE), len(BARE_LF)))
    assert t.send(b"RSET\r\n") == b"+OK 3 messages.\r\n"
    assert t.send(b"DELE 1\r\nDELE 3\r\nNOOP\r\nQUIT\r\n") == (
        b"+OK Message 1 deleted.\r\n+OK Message 3 deleted.\r\n+OK\r\n"
        b"+OK Bye, 2 message(s) deleted.\r\n")
    assert t.closed
    assert store.messages("alice") == [MULTIPART]


def test_dropped_connection_deletes_nothing_and_new_mail_waits():
    store = make_store()
    t = logged_in(store)
    store.deliver("alice", b"Subject: later\r\n\r\n")
    assert t.send(b"STAT\r\n").startswith(b"+OK 3 ")        # the maildrop is fixed at login
    t.send(b"DELE 1\r\n")
    assert len(store.messages("alice")) == 4
    assert session(store).send(b"QUIT\r\n") == b"+OK Bye.\r\n"


def test_garbage_limits_and_goodbyes():
    t = session(line_length=512, max_errors=5)
    assert t.send(b"\r\n") == b"-ERR Unknown command.\r\n"
    assert t.send(b"\xff\x00 junk\r\n") == b"-ERR Unknown command.\r\n"
    assert t.send(b"USER " + b"a" * 600 + b"\r\n") == b"-ERR Line too long.\r\n"
    assert t.send(b"USER " + b"a" * 600) == b"-ERR Line too long.\r\n"
    assert t.send(b"b" * 600 + b"\r\nNOOP\r\n") == (
        b"-ERR Command not valid now.\r\n-ERR Too many errors, closing.\r\n")
    assert t.closed
    assert logged_in().session.timed_out() == b"-ERR Disconnected for inactivity.\r\n"
    assert session().session.shutdown() == b"-ERR Server shutting down.\r\n"
    assert Pop3Session(make_store()).refuse() == (
        b"-ERR [SYS/TEMP] Too many connections, try again later.\r\n")

"""IMAP sessions, sans-I/O: exact transcripts of the RFC 3501 subset."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from mailgate.demo import ImapSession, Limits

from tests.demo.helpers import (
    BARE_LF,
    MULTIPART,
    NESTED,
    PASSWORD,
    SIMPLE,
    Transcript,
    make_store,
)

CAPS = b"IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN UIDPLUS UNSELECT"
LOGIN = b'a LOGIN alice "wonder land"\r\n'


def session(store=None, **limits) -> Transcript:
    t = Transcript(ImapSession(store or make_store(), hostname="mx.test",
                               limits=Limits(**limits) if limits else None))
    assert t.greeting == b"* OK [CAPABILITY " + CAPS + b"] mx.test mailgate demo IMAP4rev1 server ready\r\n"
    return t


def selected(store=None, **limits) -> Transcript:
    t = session(store, **limits)
    assert t.send(LOGIN).endswith(b"a OK [CAPABILITY " + CAPS + b"] Logged in\r\n")
    assert t.send(b"s SELECT INBOX\r\n").endswith(b"s OK [READ-WRITE] SELECT completed\r\n")
    return t


def body_of(message: bytes) -> bytes:
    return message[message.index(b"\r\n\r\n") + 4:]


# -- login ------------------------------------------------------------------------

def test_login_with_synchronizing_literals_as_nginx_sends_it():
    t = session()
    assert t.send(b"a1 LOGIN {5}\r\n") == b"+ Ready for literal data\r\n"
    assert t.send(b"alice {11}\r\n") == b"+ Ready for literal data\r\n"
    assert t.send(b"wonder land\r\n") == b"a1 OK [CAPABILITY " + CAPS + b"] Logged in\r\n"


def test_login_with_non_synchronizing_literals_byte_by_byte():
    t = session()
    out = b"".join(t.send(bytes([c])) for c in b"a1 LOGIN {5+}\r\nalice {11+}\r\nwonder land\r\n")
    assert out == b"a1 OK [CAPABILITY " + CAPS + b"] Logged in\r\n"


def test_login_failures_and_state_rules():
    t = session()
    assert t.send(b"a SELECT INBOX\r\n") == b"a BAD SELECT is not valid in this state.\r\n"
    assert t.send(b"b LOGIN alice wrong\r\n") == (
        b"b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
    assert t.send(b"c LOGIN alice\r\n") == b"c BAD wrong number of arguments\r\n"
    assert t.send(b"d LOGIN nobody x\r\n").startswith(b"d NO [AUTHENTICATIONFAILED]")
    assert t.send(LOGIN).startswith(b"a OK")
    assert t.send(b"e LOGIN alice x\r\n") == b"e BAD LOGIN is not valid in this state.\r\n"


def test_authenticate_plain_all_forms():
    response = base64.b64encode(b"\0alice\0" + PASSWORD.encode())
    t = session()
    assert t.send(b"a AUTHENTICATE PLAIN\r\n") == b"+ \r\n"
    assert t.send(response + b"\r\n").startswith(b"a OK [CAPABILITY")
    t = session()
    assert t.send(b"a AUTHENTICATE plain " + response + b"\r\n").startswith(b"a OK")
    t = session()
    assert t.send(b"a AUTHENTICATE PLAIN\r\n*\r\n") == b"+ \r\na BAD Authentication cancelled.\r\n"
    assert t.send(b"b AUTHENTICATE PLAIN\r\n%%%\r\n") == (
        b"+ \r\nb BAD Invalid SASL PLAIN response.\r\n")
    assert t.send(b"c AUTHENTICATE PLAIN =\r\n") == b"c BAD Invalid SASL PLAIN response.\r\n"
    assert t.send(b"d AUTHENTICATE CRAM-MD5\r\n") == (
        b"d NO [CANNOT] Unsupported authentication mechanism.\r\n")
    assert t.send(b"f AUTHENTICATE PLAIN\r\n" + base64.b64encode(b"\0bob\0x") + b"\r\n") == (
        b"+ \r\nf NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
    bad = base64.b64encode(b"\0alice\0nope")
    assert t.send(b"e AUTHENTICATE PLAIN " + bad + b"\r\n").startswith(b"e NO [AUTHENTICATIONFAILED]")


def test_capability_noop_logout():
    t = session()
    assert t.send(b"a CAPABILITY\r\nb NOOP\r\n") == (
        b"* CAPABILITY " + CAPS + b"\r\na OK CAPABILITY completed\r\nb OK NOOP completed\r\n")
    assert t.send(b"c LOGOUT\r\nd NOOP\r\n") == b"* BYE Logging out\r\nc OK LOGOUT completed\r\n"
    assert t.closed and t.send(b"e NOOP\r\n") == b"" and t.session.resume() == b""


# -- selecting ------------------------------------------------------------------

def test_select_and_examine_responses():
    store = make_store()
    store.mailbox("alice").update_flags(store.mailbox("alice").snapshot()[0], "add", ["\\Seen"])
    validity = store.mailbox("alice").uidvalidity
    t = session(store)
    t.send(LOGIN)
    assert t.send(b"s EXAMINE inbox\r\n") == (
        b"* FLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen)\r\n"
        b"* OK [PERMANENTFLAGS ()] Flags permitted.\r\n"
        b"* 3 EXISTS\r\n* 3 RECENT\r\n"
        b"* OK [UNSEEN 2] First unseen.\r\n"
        b"* OK [UIDVALIDITY %d] UIDs valid.\r\n"
        b"* OK [UIDNEXT 4] Predicted next UID.\r\n"
        b"s OK [READ-ONLY] EXAMINE completed\r\n" % validity)
    out = t.send(b"s SELECT INBOX\r\n")
    assert b"* OK [PERMANENTFLAGS (\\* \\Answered \\Deleted \\Draft \\Flagged \\Seen)]" in out
    assert b"* 3 RECENT\r\n" in out          # EXAMINE did not take \Recent away
    out = session(store)
    out.send(LOGIN)
    assert b"* 0 RECENT\r\n" in out.send(b"s SELECT INBOX\r\n")     # the SELECT did
    assert out.send(b"x SELECT Nowhere\r\n") == b"x NO [TRYCREATE] Mailbox does not exist.\r\n"
    assert out.send(b"y FETCH 1 FLAGS\r\n") == b"y BAD FETCH is not valid in this state.\r\n"


# -- FETCH -------------------------------------------------------------------------

def test_fetch_body_is_exact_literal_and_sets_seen():
    t = selected()
    assert t.send(b"f FETCH 1 BODY[]\r\n") == (
        b"* 1 FETCH (BODY[] {%d}\r\n%s FLAGS (\\Recent \\Seen))\r\nf OK FETCH completed\r\n"
        % (len(SIMPLE), SIMPLE))
    assert t.send(b"g FETCH 3 (FLAGS BODY.PEEK[])\r\n") == (
        b"* 3 FETCH (FLAGS (\\Recent) BODY[] {%d}\r\n%s)\r\ng OK FETCH completed\r\n"
        % (len(BARE_LF), BARE_LF))
    assert t.send(b"h FETCH 2 (RFC822.HEADER RFC822.SIZE)\r\n") == (
        b"* 2 FETCH (RFC822.HEADER {%d}\r\n%s RFC822.SIZE %d)\r\nh OK FETCH completed\r\n"
        % (MULTIPART.index(b"\r\n\r\n") + 4, MULTIPART[:MULTIPART.index(b"\r\n\r\n") + 4],
           len(MULTIPART)))
    out = t.send(b"i FETCH 2 RFC822\r\n")
    assert out.startswith(b"* 2 FETCH (RFC822 {%d}\r\n%s FLAGS (\\Recent \\Seen))" % (
        len(MULTIPART), MULTIPART))


def test_fetch_sections_and_partials():
    t = selected()
    cases = {
        b"BODY.PEEK[TEXT]": body_of(SIMPLE),
        b"BODY.PEEK[1]": body_of(SIMPLE),                 # a single-part message's part 1
        b"BODY.PEEK[HEADER.FIELDS.NOT (From To Date Message-ID)]": b"Subject: lunch\r\n\r\n",
        b'BODY.PEEK[HEADER.FIELDS ("subject")]': b"Subject: lunch\r\n\r\n",
        b"BODY.PEEK[]<6.5>": SIMPLE[6:11],
        b"BODY.PEEK[]<100000.5>": b"",
    }
    for item, expected in cases.items():
        out = t.send(b"f FETCH 1 (" + item + b")\r\n")
        label = item.replace(b".PEEK", b"").split(b"<")[0]
        if b"<" in item:
            label += b"<" + item.split(b"<")[1].split(b".")[0] + b">"
        assert out == b"* 1 FETCH (%s {%d}\r\n%s)\r\nf OK FETCH completed\r\n" % (
            label, len(expected), expected), item
    assert t.send(b"f FETCH 1 BODY.PEEK[2]\r\n") == (
        b"* 1 FETCH (BODY[2] NIL)\r\nf OK FETCH completed\r\n")
    mime = (b"Content-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=\"r.bin\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n")
    assert t.send(b"f FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.MIME])\r\n") == (
        b"* 2 FETCH (BODY[1] {14}\r\nsee attachment BODY[2.MIME] {%d}\r\n%s)\r\n"
        b"f OK FETCH completed\r\n" % (len(mime), mime))


def test_fetch_structure_envelope_date_and_macros():
    store = make_store()
    when = dt.datetime(2025, 3, 5, 9, 8, 7, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    store.deliver("alice", SIMPLE, internal_date=when, flags=["\\Flagged", "$Label1"])
    t = selected(store)
    assert t.send(b"f FETCH 2 BODYSTRUCTURE\r\n") == (
        b'* 2 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("charset" "utf-8") NIL NIL "7BIT" 14 1 '
        b'NIL NIL NIL NIL)("APPLICATION" "OCTET-STREAM" NIL NIL NIL "base64" 8 NIL '
        b'("attachment" ("filename" "r.bin")) NIL NIL) "MIXED" ("boundary" "XYZ") NIL NIL NIL))'
        b"\r\nf OK FETCH completed\r\n")
    assert t.send(b"f FETCH 2 BODY\r\n") == (
        b'* 2 FETCH (BODY (("TEXT" "PLAIN" ("charset" "utf-8") NIL NIL "7BIT" 14 1)'
        b'("APPLICATION" "OCTET-STREAM" NIL NIL NIL "base64" 8) "MIXED"))'
        b"\r\nf OK FETCH completed\r\n")
    assert t.send(b"f FETCH 4 ALL\r\n") == (
        b'* 4 FETCH (FLAGS (\\Flagged \\Recent $Label1) INTERNALDATE " 5-Mar-2025 09:08:07 -0700"'
        b' RFC822.SIZE 215 ENVELOPE ("Tue, 04 Mar 2025 12:30:00 +0100" "lunch" '
        b'(("Alice Example" NIL "alice" "example.com")) '
        b'(("Alice Example" NIL "alice" "example.com")) '
        b'(("Alice Example" NIL "alice" "example.com")) '
        b'((NIL NIL "bob" "example.com")) NIL NIL NIL "<1@example.com>"))'
        b"\r\nf OK FETCH completed\r\n")
    out = t.send(b"f FETCH 3 FULL\r\n")
    assert b"BODY (\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 22 3)" in out


def test_fetch_inside_an_encapsulated_message():
    store = make_store()
    store.deliver("alice", NESTED)
    t = selected(store)
    inner = NESTED[NESTED.index(b"Subject: inner"):NESTED.index(b"\r\n--outer--")]
    inner_header = inner[:inner.index(b"\r\n\r\n") + 4]
    cases = {
        b"2": inner,
        b"2.HEADER": inner_header,
        b"2.HEADER.FIELDS (SUBJECT)": b"Subject: inner\r\n\r\n",
        b"2.TEXT": inner[len(inner_header):],
        b"2.1": b"plain",
        b"2.2.MIME": b"Content-Type: text/html\r\n\r\n",
    }
    for section, expected in cases.items():
        assert t.send(b"f FETCH 4 BODY.PEEK[%s]\r\n" % section) == (
            b"* 4 FETCH (BODY[%s] {%d}\r\n%s)\r\nf OK FETCH completed\r\n" % (
                section, len(expected), expected)), section
    assert t.send(b"f FETCH 4 BODY.PEEK[1.HEADER]\r\n") == (
        b"* 4 FETCH (BODY[1.HEADER] NIL)\r\nf OK FETCH completed\r\n")
    assert t.send(b"f FETCH 4 BODY\r\n") == (
        b'* 4 FETCH (BODY (("TEXT" "PLAIN" NIL NIL NIL "7BIT" 5 1)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" %d (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'(("TEXT" "PLAIN" ("charset" "us-ascii") NIL NIL "7BIT" 5 1)'
        b'("TEXT" "HTML" NIL NIL NIL "7BIT" 8 1) "ALTERNATIVE") 11) "MIXED"))\r\n'
        b"f OK FETCH completed\r\n" % len(inner))


def test_eight_bit_header_values_go_out_as_literals():
    store = make_store()
    subject = "Grüße".encode()
    store.deliver("alice", b"Subject: " + subject + b"\r\nFrom: \"A \\\"q\\\"\" <a@b>\r\n"
                           b"To: undisclosed-recipients:;\r\nCc: localpart\r\n\r\n")
    t = selected(store)
    assert t.send(b"f FETCH 4 ENVELOPE\r\n") == (
        b'* 4 FETCH (ENVELOPE (NIL {%d}\r\n%s (("A \\"q\\"" NIL "a" "b")) '
        b'(("A \\"q\\"" NIL "a" "b")) (("A \\"q\\"" NIL "a" "b")) NIL '
        b'((NIL NIL "localpart" "")) NIL NIL NIL))\r\n'
        b"f OK FETCH completed\r\n" % (len(subject), subject))


def test_fetch_sequence_sets_and_errors():
    t = selected()
    assert t.send(b"f FETCH 3:2 UID\r\n") == (
        b"* 2 FETCH (UID 2)\r\n* 3 FETCH (UID 3)\r\nf OK FETCH completed\r\n")
    assert t.send(b"f FETCH *,1 UID\r\n") == (
        b"* 1 FETCH (UID 1)\r\n* 3 FETCH (UID 3)\r\nf OK FETCH completed\r\n")
    assert t.send(b"f FETCH 4 UID\r\n") == b"f BAD Invalid message sequence number.\r\n"
    assert t.send(b"f FETCH 0 UID\r\n") == b"f BAD invalid sequence set\r\n"
    assert t.send(b"f FETCH 1 (UID BOGUS)\r\n") == b"f BAD unknown FETCH item 'BOGUS'\r\n"
    assert t.send(b"f FETCH 1 BODY[HEADER.FIELDS]\r\n") == b"f BAD invalid section\r\n"
    assert t.send(b"f FETCH 1 BODY[TEXT (A)]\r\n") == b"f BAD invalid section\r\n"
    assert t.send(b"f FETCH 1 BODY[MIME]\r\n") == b"f BAD invalid section\r\n"
    assert t.send(b"f FETCH 1 BODY[01]\r\n") == b"f BAD invalid section part number\r\n"
    assert t.send(b"f FETCH 1 BODY[HEADER.FIELDS ()]\r\n") == (
        b"f BAD invalid header field list\r\n")
    assert t.send(b"f FETCH 1 BODY[HEADER.FIELDS (A)(B)]\r\n") == b"f BAD missing space\r\n"
    assert t.send(b"f FETCH 1 BODY[HEADER.FIELDS (A) ]\r\n") == b"f BAD trailing space\r\n"
    assert t.send(b"f FETCH 1 ()\r\n") == b"f BAD empty FETCH item list\r\n"
    assert t.send(b"f FETCH 1 (\"UID\")\r\n") == b"f BAD invalid FETCH item\r\n"
    assert t.send(b"f FETCH 1 \"UID\"\r\n") == b"f BAD invalid FETCH item\r\n"
    assert t.send(b"f FETCH 1 BODY[]<0.0>\r\n") == (
        b"f BAD a partial fetch needs a non-zero length\r\n")
    assert t.send(b"f UID FETCH 7:* UID\r\n") == (
        b"* 3 FETCH (UID 3)\r\nf OK FETCH completed\r\n")    # n:* always holds the last UID
    assert t.send(b"f UID FETCH 5 UID\r\n") == b"f OK FETCH completed\r\n"


# -- SEARCH, STORE, EXPUNGE, COPY -----------------------------------------------

@pytest.mark.parametrize("criteria, hits", [
    (b"ALL", b" 1 2 3"),
    (b"CHARSET UTF-8 SUBJECT LUNCH", b" 1"),
    (b"FROM alice TO bob", b" 1"),
    (b"HEADER Content-Type mixed", b" 2"),
    (b'HEADER "Message-ID" ""', b" 1"),
    (b"BODY attachment", b" 2"),
    (b"TEXT unix", b" 3"),
    (b"LARGER 200 SMALLER 300", b" 1"),
    (b"NOT LARGER 100", b" 3"),
    (b"OR 1 3", b" 1 3"),
    (b"2:*", b" 2 3"),
    (b"UID 1,3", b" 1 3"),
    (b"SENTON 4-Mar-2025", b" 1"),
    (b"SENTSINCE 5-Mar-2025", b""),
    (b"SINCE 1-Jan-2000 BEFORE 1-Jan-2100", b" 1 2 3"),
    (b"NEW", b" 1 2 3"),
    (b"OLD", b""),
    (b"DELETED", b""),
    (b"(UNSEEN UNDELETED) UNFLAGGED UNANSWERED UNDRAFT", b" 1 2 3"),
    (b"KEYWORD $Junk", b""),
    (b"UNKEYWORD $Junk", b" 1 2 3"),
])
def test_search_keys(criteria, hits):
    t = selected()
    assert t.send(b"q SEARCH " + criteria + b"\r\n") == (
        b"* SEARCH" + hits + b"\r\nq OK SEARCH completed\r\n")


def test_search_errors_and_uid_search():
    store = make_store()
    store.deliver("alice", b"Date: not a date\r\n\r\n")
    t = selected(store)
    assert t.send(b"q SEARCH SENTSINCE 1-Jan-1970\r\n") == (
        b"* SEARCH 1\r\nq OK SEARCH completed\r\n")     # only 1 has a usable Date
    assert t.send(b'q SEARCH "ALL"\r\n') == b"q BAD invalid SEARCH key\r\n"
    assert t.send(b"q SEARCH RECENT 4\r\n") == b"* SEARCH 4\r\nq OK SEARCH completed\r\n"
    assert t.send(b"q SEARCH CHARSET KOI8-R ALL\r\n") == (
        b"q NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset.\r\n")
    assert t.send(b"q SEARCH FROBNICATE\r\n") == b"q BAD unknown SEARCH key 'FROBNICATE'\r\n"
    assert t.send(b"q SEARCH SUBJECT\r\n") == b"q BAD missing string in SEARCH\r\n"
    assert t.send(b"q SEARCH SINCE 32-Jan-2020\r\n") == b"q BAD invalid date\r\n"
    assert t.send(b"q SEARCH\r\n") == b"q BAD empty SEARCH criteria\r\n"
    t.send(b"x STORE 2 +FLAGS.SILENT (\\Deleted)\r\nx EXPUNGE\r\n")
    assert t.send(b"q UID SEARCH ALL\r\n") == b"* SEARCH 1 3 4\r\nq OK SEARCH completed\r\n"
    assert t.send(b"q SEARCH ALL\r\n") == b"* SEARCH 1 2 3\r\nq OK SEARCH completed\r\n"


def test_store_variants():
    t = selected()
    assert t.send(b"a STORE 1 +FLAGS (\\Seen \\flagged $Work)\r\n") == (
        b"* 1 FETCH (FLAGS (\\Flagged \\Recent \\Seen $Work))\r\na OK STORE completed\r\n")
    assert t.send(b"b STORE 1 -FLAGS \\Seen\r\n") == (
        b"* 1 FETCH (FLAGS (\\Flagged \\Recent $Work))\r\nb OK STORE completed\r\n")
    assert t.send(b"c STORE 1 FLAGS (\\Answered \\Recent)\r\n") == (
        b"* 1 FETCH (FLAGS (\\Answered \\Recent))\r\nc OK STORE completed\r\n")
    assert t.send(b"d UID STORE 2:3 FLAGS.SILENT (\\Draft)\r\n") == b"d OK STORE completed\r\n"
    assert t.send(b"e STORE 1 +FLAGS (\\1)\r\n") == b"e BAD invalid flag\r\n"
    assert t.send(b"f STORE 1 XFLAGS (\\Seen)\r\n") == b"f BAD unknown STORE item\r\n"
    assert t.send(b"g STORE 1 FLAGS\r\n") == b"g BAD STORE needs a set, an item and flags\r\n"
    assert t.send(b"h SEARCH DRAFT\r\n") == b"* SEARCH 2 3\r\nh OK SEARCH completed\r\n"


def test_expunge_numbering_close_and_unselect():
    store = make_store()
    for i in range(2):
        store.deliver("alice", b"Subject: %d\r\n\r\n" % i)
    t = selected(store)
    t.send(b"a STORE 1,2,4 +FLAGS.SILENT (\\Deleted)\r\n")
    assert t.send(b"b EXPUNGE\r\n") == (
        b"* 1 EXPUNGE\r\n* 1 EXPUNGE\r\n* 2 EXPUNGE\r\nb OK EXPUNGE completed\r\n")
    assert [m.uid for m in store.mailbox("alice").snapshot()] == [3, 5]
    t.send(b"c STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
    assert t.send(b"d UNSELECT\r\n") == b"d OK UNSELECT completed\r\n"
    assert len(store.messages("alice")) == 2
    t.send(b"s SELECT INBOX\r\n")
    assert t.send(b"e CLOSE\r\n") == b"e OK CLOSE completed\r\n"        # expunges silently
    assert len(store.messages("alice")) == 1
    assert t.send(b"f EXPUNGE\r\n") == b"f BAD EXPUNGE is not valid in this state.\r\n"
    t.send(b"s EXAMINE INBOX\r\n")
    assert t.send(b"g EXPUNGE\r\n") == b"g NO [READ-ONLY] Mailbox is read-only.\r\n"


def test_copy_create_list_status_subscribe():
    store = make_store()
    t = selected(store)
    assert t.send(b"a COPY 1:2 Archive\r\n") == b"a NO [TRYCREATE] Mailbox does not exist.\r\n"
    assert t.send(b"b CREATE Archive\r\nc CREATE Archive/2025\r\n") == (
        b"b OK CREATE completed\r\nc OK CREATE completed\r\n")
    assert t.send(b"d CREATE inbox\r\n") == b"d NO [ALREADYEXISTS] Mailbox exists.\r\n"
    assert t.send(b'd CREATE "a*b"\r\n') == b"d NO [CANNOT] Invalid mailbox name.\r\n"
    validity = store.mailbox("alice", "Archive").uidvalidity
    assert t.send(b"e COPY 1:2 Archive\r\n") == (
        b"e OK [COPYUID %d 1:2 1:2] COPY completed\r\n" % validity)
    assert store.messages("alice", "Archive") == [SIMPLE, MULTIPART]
    assert t.send(b'f LIST "" *\r\n') == (
        b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
        b'* LIST (\\HasChildren) "/" "Archive"\r\n'
        b'* LIST (\\HasNoChildren) "/" "Archive/2025"\r\n'
        b"f OK LIST completed\r\n")
    assert t.send(b'g LIST "" %\r\n').count(b"* LIST") == 2
    assert t.send(b'h LIST Archive/ %\r\n') == (
        b'* LIST (\\HasNoChildren) "/" "Archive/2025"\r\nh OK LIST completed\r\n')
    assert t.send(b'i LIST "" inBox\r\n') == (
        b'* LIST (\\HasNoChildren) "/" "INBOX"\r\ni OK LIST completed\r\n')
    assert t.send(b'j LIST "" ""\r\n') == b'* LIST (\\Noselect) "/" ""\r\nj OK LIST completed\r\n'
    assert t.send(b'k UNSUBSCRIBE Archive\r\nl LSUB "" *\r\n') == (
        b'k OK UNSUBSCRIBE completed\r\n'
        b'* LSUB (\\HasNoChildren) "/" "INBOX"\r\n'
        b'* LSUB (\\HasNoChildren) "/" "Archive/2025"\r\nl OK LSUB completed\r\n')
    assert t.send(b"m STATUS Archive (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)\r\n") == (
        b'* STATUS "Archive" (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY %d UNSEEN 2)\r\n'
        b"m OK STATUS completed\r\n" % validity)
    assert t.send(b"n STATUS Archive (BOGUS)\r\n") == b"n BAD unknown STATUS item\r\n"
    assert t.send(b"n STATUS Archive MESSAGES\r\n") == b"n BAD STATUS needs a list of items\r\n"
    assert t.send(b"n CHECK\r\nn UID COPY 99 Archive\r\nn UID MOVE 1 Archive\r\n") == (
        b"n OK CHECK completed\r\nn OK COPY completed\r\nn BAD unknown UID command\r\n")
    assert t.send(b"o DELETE Archive\r\n").startswith(b"o NO [CANNOT]")
    assert t.send(b"p RENAME Archive Old\r\n").startswith(b"p NO [CANNOT]")


def test_append_forms_and_new_mail_in_the_selected_mailbox():
    store = make_store()
    t = selected(store)
    validity = store.mailbox("alice").uidvalidity
    message = b"Subject: x\r\n\r\n)( {3}\r\n"
    assert t.send(b"a APPEND INBOX (\\Seen) {%d}\r\n" % len(message)) == (
        b"+ Ready for literal data\r\n")
    assert t.send(message + b"\r\n") == (
        b"* 4 EXISTS\r\n* 4 RECENT\r\na OK [APPENDUID %d 4] APPEND completed\r\n" % validity)
    assert store.messages("alice")[-1] == message
    assert store.flags("alice")[4] == {"\\Seen"}
    assert t.send(b'b APPEND INBOX "01-Feb-2024 01:02:03 +0530" {1+}\r\nX\r\n') == (
        b"* 5 EXISTS\r\n* 5 RECENT\r\nb OK [APPENDUID %d 5] APPEND completed\r\n" % validity)
    date = store.mailbox("alice").snapshot()[-1].internal_date
    assert date.isoformat() == "2024-02-01T01:02:03+05:30"
    assert t.send(b"c APPEND INBOX () () {1+}\r\nX\r\n") == b"c BAD invalid APPEND arguments\r\n"
    assert t.send(b"c APPEND INBOX atom\r\n") == b"c BAD APPEND needs the message as a literal\r\n"
    assert t.send(b'd APPEND INBOX "31-Feb-2024 01:02:03 +0000" {1+}\r\nX\r\n') == (
        b"d BAD invalid date-time\r\n")
    assert t.send(b"e APPEND Nowhere {1+}\r\nX\r\n") == (
        b"e NO [TRYCREATE] Mailbox does not exist.\r\n")


def test_a_thunderbird_like_session():
    store = make_store()
    t = session(store)
    auth = base64.b64encode(b"\0alice\0wonder land")
    out = t.send(b"1 capability\r\n2 authenticate PLAIN\r\n")
    assert out == (b"* CAPABILITY " + CAPS + b"\r\n1 OK CAPABILITY completed\r\n+ \r\n")
    assert t.send(auth + b"\r\n").startswith(b"2 OK")
    assert t.send(b'3 list "" ""\r\n4 lsub "" "*"\r\n5 list "" "INBOX"\r\n').count(b" OK ") == 3
    assert t.send(b'6 create "Trash"\r\n7 subscribe "Trash"\r\n') == (
        b"6 OK CREATE completed\r\n7 OK SUBSCRIBE completed\r\n")
    assert t.send(b'8 select "INBOX"\r\n').endswith(b"8 OK [READ-WRITE] SELECT completed\r\n")
    assert t.send(b"9 UID fetch 1:* (FLAGS)\r\n") == (
        b"* 1 FETCH (UID 1 FLAGS (\\Recent))\r\n* 2 FETCH (UID 2 FLAGS (\\Recent))\r\n"
        b"* 3 FETCH (UID 3 FLAGS (\\Recent))\r\n9 OK FETCH completed\r\n")
    out = t.send(b"10 UID fetch 1 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc "
                 b"Bcc Subject Date Message-ID Priority X-Priority References Newsgroups "
                 b"In-Reply-To Content-Type Reply-To)])\r\n")
    fields = SIMPLE[:SIMPLE.index(b"\r\n\r\n") + 4]
    assert out == (b"* 1 FETCH (UID 1 RFC822.SIZE %d FLAGS (\\Recent) BODY[HEADER.FIELDS (From To "
                   b"Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups "
                   b"In-Reply-To Content-Type Reply-To)] {%d}\r\n%s)\r\n10 OK FETCH completed\r\n"
                   % (len(SIMPLE), len(fields), fields))
    out = t.send(b"11 UID fetch 1 (UID RFC822.SIZE BODY.PEEK[])\r\n12 UID store 1 +Flags (\\Seen)\r\n")
    assert SIMPLE in out and out.endswith(
        b"* 1 FETCH (UID 1 FLAGS (\\Recent \\Seen))\r\n12 OK STORE completed\r\n")
    validity = store.mailbox("alice", "Trash").uidvalidity
    assert t.send(b'13 uid copy 1 "Trash"\r\n14 uid store 1 +FLAGS (\\Deleted)\r\n'
                  b"15 expunge\r\n16 UID fetch 4:* (FLAGS)\r\n17 noop\r\n18 logout\r\n") == (
        b"13 OK [COPYUID %d 1 1] COPY completed\r\n"
        b"* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent \\Seen))\r\n14 OK STORE completed\r\n"
        b"* 1 EXPUNGE\r\n15 OK EXPUNGE completed\r\n"
        b"* 2 FETCH (UID 3 FLAGS (\\Recent))\r\n16 OK FETCH completed\r\n"
        b"17 OK NOOP completed\r\n* BYE Logging out\r\n18 OK LOGOUT completed\r\n" % validity)
    assert store.messages("alice", "Trash") == [SIMPLE]
    assert store.flags("alice", "Trash") == {1: {"\\Seen"}}


# -- other sessions change the mailbox ---------------------------------------------

def test_examine_sees_new_mail_without_taking_recent():
    store = make_store()
    t = session(store)
    t.send(LOGIN + b"e EXAMINE INBOX\r\n")
    store.deliver("alice", b"Subject: new\r\n\r\n")
    assert t.send(b"n NOOP\r\n") == b"* 4 EXISTS\r\n* 4 RECENT\r\nn OK NOOP completed\r\n"
    assert store.mailbox("alice").status()["RECENT"] == 4


def test_changes_by_other_sessions_are_announced():
    store = make_store()
    a, b = selected(store), selected(store)
    box = store.mailbox("alice")
    uid = store.deliver("alice", b"Subject: new\r\n\r\n")
    assert uid == 4
    box.update_flags(box.snapshot()[0], "add", ["\\Answered"])
    assert b.send(b"n NOOP\r\n") == (
        b"* 4 EXISTS\r\n* 1 RECENT\r\n* 1 FETCH (FLAGS (\\Answered))\r\nn OK NOOP completed\r\n")
    assert a.send(b"n NOOP\r\n") == (     # b took \Recent for the new message
        b"* 4 EXISTS\r\n* 3 RECENT\r\n* 1 FETCH (FLAGS (\\Answered \\Recent))\r\n"
        b"n OK NOOP completed\r\n")
    b.send(b"d STORE 2 +FLAGS.SILENT (\\Deleted)\r\nx EXPUNGE\r\n")
    # no EXPUNGE while answering FETCH: the gone message can still be fetched
    assert a.send(b"f FETCH 2 RFC822.SIZE\r\n") == (
        b"* 2 FETCH (RFC822.SIZE %d)\r\n* 2 FETCH (FLAGS (\\Deleted \\Recent))\r\n"
        b"f OK FETCH completed\r\n" % len(MULTIPART))
    # UID FETCH may report it
    assert a.send(b"g UID FETCH 3 UID\r\n") == (
        b"* 3 FETCH (UID 3)\r\n* 2 EXPUNGE\r\ng OK FETCH completed\r\n")
    assert a.send(b"h FETCH 2 UID\r\n") == b"* 2 FETCH (UID 3)\r\nh OK FETCH completed\r\n"


# -- bad input and limits ------------------------------------------------------------

def test_garbage_gets_bad_and_the_session_goes_on():
    t = session()
    assert t.send(b"\r\n") == b"* BAD invalid tag\r\n"
    assert t.send(b"+tag NOOP\r\n") == b"* BAD invalid tag\r\n"
    assert t.send(b"tag\r\n") == b"tag BAD missing command\r\n"
    assert t.send(b"tag FOO\r\n") == b"tag BAD Unknown command.\r\n"
    assert t.send(b"tag NOOP extra\r\n") == b"tag BAD wrong number of arguments\r\n"
    assert t.send(b'tag LOGIN "unterminated\r\n') == b"tag BAD unterminated quoted string\r\n"
    assert t.send(b"tag LOGIN (a b\r\n") == b"tag BAD unterminated list\r\n"
    assert t.send(b"tag LOGIN {3} x\r\n") == b"tag BAD invalid literal\r\n"
    assert t.send(b"tag UID\r\n") == b"tag BAD UID needs a command\r\n"
    assert t.send(b"tag \x00\xff\r\n") == b"tag BAD expected an atom\r\n"
    assert not t.closed
    assert t.send(b"a NOOP\r\n") == b"a OK NOOP completed\r\n"


def test_too_many_errors_closes():
    t = session(max_errors=3)
    assert t.send(b"x\r\n(\r\ny Z\r\nw NOOP\r\n") == (
        b"x BAD missing command\r\n* BAD invalid tag\r\ny BAD Unknown command.\r\n"
        b"* BYE Too many invalid commands.\r\n")
    assert t.closed


def test_line_and_literal_limits():
    t = session(line_length=512, message_size=1000)
    assert t.send(b"a NOOP " + b"x" * 600) == b"* BYE Command line too long.\r\n"
    assert t.closed
    t = selected(line_length=512, message_size=1000)
    assert t.send(b"a APPEND INBOX {2000}\r\n") == b"a NO [TOOBIG] Literal too large.\r\n"
    assert t.send(b"b NOOP\r\n") == b"b OK NOOP completed\r\n"
    # a literal under the command limit but over the message size
    assert t.send(b"b APPEND INBOX {1200+}\r\n" + b"x" * 1200 + b"\r\n") == (
        b"b NO [TOOBIG] Message too large.\r\n")
    assert t.send(b"c APPEND INBOX {2000+}\r\n") == b"* BYE Literal too large.\r\n"
    assert t.closed


def test_pipelined_output_is_handed_out_in_budgets():
    store = make_store()
    big = b"Subject: big\r\n\r\n" + b"x" * 100_000 + b"\r\n"
    store.deliver("alice", big)
    t = selected(store)
    out = t.send(b"".join(b"f%d FETCH 4 BODY.PEEK[]\r\n" % i for i in range(10)))
    assert out.count(big) == 3 and t.session.blocked      # 300 KB is over the budget
    out += t.session.resume()
    assert out.count(big) == 6 and t.session.blocked
    out += t.session.resume() + t.session.resume()
    assert out.count(big) == 10 and not t.session.blocked
    assert out.endswith(b"f9 OK FETCH completed\r\n")


def test_timeout_shutdown_and_busy_goodbyes():
    assert session().session.timed_out() == b"* BYE Disconnected for inactivity.\r\n"
    s = ImapSession(make_store())
    assert s.refuse() == b"* BYE Too many connections, try again later.\r\n" and s.closed
    t = session()
    assert t.session.shutdown() == b"* BYE Server shutting down.\r\n" and t.closed

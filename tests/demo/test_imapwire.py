"""IMAP syntax: commands with atoms, strings, literals and lists; sets; dates; output strings."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from mailgate.demo._imapwire import (
    Atom,
    Bad,
    SequenceSet,
    flag_list,
    format_datetime,
    mailbox_name,
    number,
    parse_command,
    parse_date,
    parse_datetime,
    string,
)


def test_parse_command_tokens():
    tag, name, args = parse_command(
        b'A1 uid fetch 1:*,3 (FLAGS BODY.PEEK[HEADER.FIELDS (To "X-A")]<0.10>) {3}\r\na\r\n'
        b' "q\\"\\\\" NIL ()\r\n')
    assert (tag, name) == (b"A1", "UID")
    assert args == [b"fetch", b"1:*,3", [b"FLAGS", b'BODY.PEEK[HEADER.FIELDS (To "X-A")]<0.10>'],
                    b"a\r\n", b'q"\\', b"NIL", []]
    assert [type(a) for a in args[:2]] == [Atom, Atom]
    assert type(args[3]) is bytes and type(args[4]) is bytes and type(args[5]) is Atom
    assert parse_command(b"t NOOP\n") == (b"t", "NOOP", [])
    assert parse_command(b"t X {0}\r\n\r\n")[2] == [b""]


@pytest.mark.parametrize("line, message, tag", [
    (b" NOOP\r\n", "invalid tag", None),
    (b"t\x01 NOOP\r\n", "invalid tag", None),
    (b"t \r\n", "missing command", b"t"),
    (b"t NO-OP\r\n", "invalid command name", b"t"),
    (b"t X )\r\n", "unexpected )", b"t"),
    (b't X "a\\b"\r\n', "invalid escape in quoted string", b"t"),
    (b't X "abc', "unterminated quoted string", b"t"),
    (b"t X {9}\r\nab\r\n", "literal longer than the command", b"t"),
    (b"t X (a(b)\r\n", "missing space in list", b"t"),
    (b"t X (a )\r\n", "space before )", b"t"),
    (b"t X a[b\r\n", "unterminated [", b"t"),
    (b"t X a\"b\r\n", "missing space between arguments", b"t"),
    (b"t X a \r\n", "trailing space", b"t"),
    (b"t X a\nb\r\n", "garbage after the command", b"t"),
])
def test_parse_command_errors(line, message, tag):
    with pytest.raises(Bad, match=re.escape(message)) as info:
        parse_command(line)
    assert info.value.tag == tag


def test_argument_shapes():
    assert number(Atom(b"42"), "n") == 42
    for bad in (Atom(b"x"), [], Atom(b"99999999999")):
        with pytest.raises(Bad):
            number(bad, "n")
    with pytest.raises(Bad, match="invalid n"):
        number(Atom(b"4294967296"), "n")
    with pytest.raises(Bad):
        number(Atom(b"0"), "n", nonzero=True)
    assert mailbox_name(b"iNbOx") == "INBOX" and mailbox_name(Atom(b"Sent")) == "Sent"
    with pytest.raises(Bad):
        mailbox_name(b"\xff")
    with pytest.raises(Bad):
        mailbox_name([b"x"])
    assert flag_list(Atom(b"\\Seen")) == ["\\Seen"]
    for bad in (b"str", Atom(b"\\"), Atom(b"a*"), [[Atom(b"x")]]):
        with pytest.raises(Bad):
            flag_list(bad)


def test_sequence_sets():
    s = SequenceSet.parse(Atom(b"1,3:5,*,9:7"))
    assert s.bounds(10) == [(1, 1), (3, 5), (10, 10), (7, 9)]
    assert [n for n in range(1, 11) if s.contains(n, 10)] == [1, 3, 4, 5, 7, 8, 9, 10]
    assert s.contains(12, 12) and not s.contains(11, 12)
    for bad in (b"0", b"1:", b"a", b"01", b"1,,2", b"4294967296"):
        with pytest.raises(Bad):
            SequenceSet.parse(Atom(bad))
    with pytest.raises(Bad):
        SequenceSet.parse(b"1")             # a string is not a set


def test_dates():
    when = parse_datetime(b" 7-Feb-2024 23:59:58 -0130")
    assert when == dt.datetime(2024, 2, 7, 23, 59, 58,
                               tzinfo=dt.timezone(-dt.timedelta(hours=1, minutes=30)))
    assert format_datetime(when) == b'" 7-Feb-2024 23:59:58 -0130"'
    for bad in (b"7-Foo-2024 00:00:00 +0000", b"7-Feb-2024 24:00:00 +0000",
                b"7-Feb-2024 00:00:00 +2400", b"7-Feb-2024"):
        with pytest.raises(Bad):
            parse_datetime(bad)
    assert parse_date(Atom(b"29-feb-2024")) == dt.date(2024, 2, 29)
    for bad in (b"29-Feb-2023", b"1-Xyz-2020", b"2020-01-01"):
        with pytest.raises(Bad):
            parse_date(bad)


def test_output_strings():
    assert string(b'a "b" \\c') == b'"a \\"b\\" \\\\c"'
    assert string(b"line\r\nbreak") == b"{11}\r\nline\r\nbreak"
    assert string(b"x" * 2000).startswith(b"{2000}\r\n")

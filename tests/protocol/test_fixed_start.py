"""A server whose greeting is the same for every connection: the session greets with
``fixed_start()`` and makes the machine later, ``greeted=True``; that machine must be
the one ``start()`` would have left, on both parser implementations."""

from __future__ import annotations

import pytest
from mailgate.protocol import ArmTimer, Close, ImapServer, Pop3Server, Send, SmtpServer, server_for

from tests.protocol.harness import Harness, server_config


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_fixed_start_is_what_start_sends(protocol):
    config = server_config(protocol, timeout=42.0)
    started = server_for(config)
    assert tuple(started.start()) == server_for(config).fixed_start(config)
    assert server_for(config).fixed_start(config) == (
        Send(b"* OK IMAP4 ready\r\n" if protocol == "imap" else b"+OK POP3 ready\r\n"), ArmTimer(42.0))


@pytest.mark.parametrize("methods", [("plain", "apop"), ("cram-md5",)])
def test_a_salted_pop3_greeting_is_not_fixed(methods):
    config = server_config("pop3", pop3_auth=methods)
    assert Pop3Server.fixed_start(config) is None
    # two connections, two salts
    first, second = (Harness(Pop3Server(config)).start() for _ in range(2))
    assert first != second and first.startswith(b"+OK POP3 ready <")


def test_smtp_never_has_a_fixed_start():
    # the greeting may wait for smtp_greeting_delay or the resolver
    assert SmtpServer.fixed_start(server_config("smtp")) is None


@pytest.mark.parametrize("protocol, command, reply", [
    ("imap", b"a1 CAPABILITY\r\n", b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\na1 OK completed\r\n"),
    ("pop3", b"CAPA\r\n", None),
])
def test_a_greeted_machine_continues_as_a_started_one(impl, protocol, command, reply):
    config = server_config(protocol)
    started = Harness(server_for(config, implementation=impl))
    started.start()
    greeted = Harness(server_for(config, greeted=True, implementation=impl))
    assert greeted.m.log_action == started.m.log_action == "in auth state"
    assert greeted.m.want_read and greeted.m.phase == started.m.phase
    answer = greeted.feed(command)
    assert answer == started.feed(command)
    if reply is not None:
        assert answer == reply
    assert greeted.call("timer_expired") == started.call("timer_expired") == b""
    assert greeted.logs("info") == started.logs("info")[-1:] == [
        "client timed out (110: Connection timed out)"]
    assert greeted.closed and started.closed


def test_a_greeted_machine_closes_silently_at_the_clients_end():
    # what the session does without a machine when the client leaves before speaking
    greeted = Harness(ImapServer(server_config("imap"), greeted=True))
    assert greeted.call("eof_received") == b""
    assert greeted.actions == [Close()] and greeted.logs() == []

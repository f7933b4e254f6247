"""Dovecot as a real IMAP/POP3 backend: users, seeded Maildirs, TLS, clean stop."""

from __future__ import annotations

import imaplib
import time

import pytest

from tests.support.clients import imap_fetch, imap_login, open_imap, open_pop3, pop3_retr
from tests.support.fixtures import default_seed
from tests.support.messages import make_message
from tests.support.procs import group_alive
from tests.support.users import ALICE, BOB, BULK, JOERG, MailUser


@pytest.mark.parametrize("user", [ALICE, BOB, JOERG], ids=["ascii", "space-password", "non-ascii"])
def test_imap_fetch_returns_the_stored_bytes(dovecot, user):
    with open_imap(dovecot.host, dovecot.imap_port) as imap:
        imap_login(imap, user)
        imap.select("INBOX", readonly=True)
        for number, stored in enumerate(dovecot.delivered(user.login), 1):
            assert imap_fetch(imap, str(number)) == stored.data == dovecot.stored_bytes(stored)


def test_the_seed_is_what_the_fixture_documents(dovecot):
    for login, messages in default_seed().items():
        assert [m.data for m in dovecot.delivered(login)] == list(messages)
    assert dovecot.delivered(BULK.login)[0].size == 10 * 1024 * 1024


def test_pop3_retr_returns_the_stored_bytes(dovecot):
    with_dots = dovecot.delivered(ALICE.login)[1]
    assert b"\r\n.\r\n" in with_dots.data  # a lone dot: the server must stuff it
    client = open_pop3(dovecot.host, dovecot.pop3_port)
    try:
        client.user(ALICE.login)
        client.pass_(ALICE.password)
        assert pop3_retr(client, 2) == with_dots.data
    finally:
        client.quit()


def test_a_wrong_password_is_refused(dovecot):
    with (
        open_imap(dovecot.host, dovecot.imap_port) as imap,
        pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"),
    ):
        imap_login(imap, MailUser(ALICE.login, "wrong"))


def test_private_instance_with_tls_and_late_delivery(dovecot_factory, pki, tls_client_context):
    instance = dovecot_factory(users=[ALICE], tls=(pki.server_rsa.cert, pki.server_rsa.key_file))
    started = time.monotonic()
    instance.start()
    assert time.monotonic() - started < 5
    message = instance.deliver(ALICE.login, make_message("late", "delivered after start\r\n"))
    for port, security in ((instance.imaps_port, "ssl"), (instance.imap_port, "starttls")):
        with open_imap(instance.host, port, security=security, context=tls_client_context) as imap:
            imap_login(imap, ALICE)
            imap.select("INBOX")
            assert imap_fetch(imap, "1") == message.data
    client = open_pop3(
        instance.host, instance.pop3s_port, security="ssl", context=tls_client_context
    )
    client.user(ALICE.login)
    client.pass_(ALICE.password)
    assert pop3_retr(client, 1) == message.data
    client.quit()
    other = instance.deliver(
        ALICE.login, make_message("box", "in another folder\r\n"), mailbox="Archive"
    )
    with open_imap(instance.host, instance.imap_port) as imap:
        imap_login(imap, ALICE)
        imap.select("Archive")
        assert imap_fetch(imap, "1") == other.data


def test_stop_leaves_no_process_and_never_reads_the_system_config(dovecot_factory):
    instance = dovecot_factory(users=[ALICE])
    instance.start()
    pgid = instance.process.pid
    config = instance.config_path.read_text()
    assert "/etc/dovecot" not in config and str(instance.directory) in config
    instance.stop()
    assert not group_alive(pgid)
    instance.stop()  # idempotent

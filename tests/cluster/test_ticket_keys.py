"""Ticket keys across a fleet: ``mailgate -s reload`` (HUP) reads the key files again
although the configuration is unchanged, and rotating them as docs/deployment.md says
(the new key first, the old one second and decrypt-only) drops no session: tickets of
the old key resume after the reload, a session logged in before it goes on."""

from __future__ import annotations

import os
import signal
import socket
import ssl

import pytest

from tests.cluster.helpers import imaps_login
from tests.e2e.gates import worker_pids
from tests.support.clients import client_context
from tests.support.procs import wait_until
from tests.support.users import ALICE, BOB

NODE = """
    auth_http $auth_http;
    ssl_certificate $rsa_cert; ssl_certificate_key $rsa_key;
    ssl_session_ticket_key $keys/current.key;
    ssl_session_ticket_key $keys/previous.key;
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
"""


def _reload(node) -> None:
    """HUP, and wait until the new worker serves alone: the old ones, told to QUIT a
    moment after it started, take no more connections and finish their sessions."""
    old = set(worker_pids(node))
    node.send_signal(signal.SIGHUP)
    assert wait_until(lambda: set(worker_pids(node)) - old, 10), "no new worker"

    def old_ones_quit() -> bool:
        log = node.error_log()
        return all(f"{pid}#{pid}: gracefully shutting down" in log for pid in old)

    assert wait_until(old_ones_quit, 10), "the old workers were not told to quit"


def _rotate(keys, new: bytes) -> None:
    """The current key becomes the previous one, ``new`` the current one."""
    os.replace(keys / "current.key", keys / "previous.key")
    (keys / "current.key").write_bytes(new)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_reload_picks_up_rotated_key_files_without_dropping_sessions(
        tmp_path, pki, proxy_factory, auth_server, dovecot, version):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "current.key").write_bytes(os.urandom(80))
    (keys / "previous.key").write_bytes(os.urandom(80))
    node = proxy_factory("mailgate")
    node.values["keys"] = keys
    node.start(NODE)
    ctx = client_context(pki, version=version)
    address = node.address("imaps")

    first = imaps_login(address, ctx, ALICE).session
    # offered only at the end: a resumption renews the ticket inside the client's session
    unused = imaps_login(address, ctx, ALICE).session
    # a session that stays logged in across both reloads
    kept = ctx.wrap_socket(socket.create_connection(address, timeout=10),
                           server_hostname="mx.test")
    try:
        assert kept.recv(1024).startswith(b"* OK")
        kept.sendall(b"a LOGIN \"%s\" \"%s\"\r\n" % (BOB.login.encode(), BOB.password.encode()))
        assert b"a OK" in kept.recv(4096)

        _rotate(keys, os.urandom(80))
        _reload(node)
        # the old key decrypts: the ticket resumes, and the new one is under the new key
        login = imaps_login(address, ctx, ALICE, first)
        assert login.reused
        second = imaps_login(address, ctx, ALICE).session

        _rotate(keys, os.urandom(80))
        _reload(node)
        assert imaps_login(address, ctx, ALICE, second).reused
        # the first key is gone from every file now: its ticket is a full handshake
        assert not imaps_login(address, ctx, ALICE, unused).reused

        kept.sendall(b"b NOOP\r\n")
        assert b"b OK" in kept.recv(4096)
    finally:
        kept.close()

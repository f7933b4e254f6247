"""The targets' own checks have teeth: each catches the fault it is there for.

A contract check that can never fail is worth nothing: here the engine is made to
misbehave on purpose (monkeypatched) and the target must report it on an input that
is clean with the real engine.
"""

from __future__ import annotations

import pytest
from mailgate.log import printable
from mailgate.protocol import _impl
from mailgate.protocol._backend import BackendLogin
from mailgate.protocol._server import ServerMachine

from tests.fuzz import CORPUS
from tests.fuzz.targets import auth_http, backend_login, machines, readers


def test_machines_catch_a_password_in_a_log_line(monkeypatch):
    # pipelined AUTH LOGIN responses then MAIL without "none": after the failed login
    # the MAIL line is logged with the buffer, where the responses still are
    data = (CORPUS / "machines" / "smtp-secret-pipelined-mail").read_bytes()
    machines.one_input(data)
    monkeypatch.setattr(ServerMachine, "_loggable",
                        lambda self, data, mark_line_ends=False: printable(data))
    with pytest.raises(AssertionError, match="secret in a log line"):
        machines.one_input(data)


def test_backend_login_catches_an_echoed_password(monkeypatch):
    data = (CORPUS / "backend_login" / "pop3-err-echo").read_bytes()
    backend_login.one_input(data)
    monkeypatch.setattr(BackendLogin, "_scrub", lambda self, line: line)
    with pytest.raises(AssertionError, match="password in a log line"):
        backend_login.one_input(data)


@pytest.mark.skipif(_impl.COMPILED not in _impl.available(), reason="no compiled speedups")
def test_machines_and_readers_catch_implementations_that_disagree(monkeypatch):
    imap = (CORPUS / "machines" / "imap-login-literals").read_bytes()
    literals = (CORPUS / "readers" / "imap-literals").read_bytes()
    # the pure-Python reader loses the last byte of every literal
    python = _impl.get(_impl.PYTHON)

    class Lossy(python.ImapReader):
        def _push(self, data, start, end):
            super()._push(data, start, max(start, end - 1))

    monkeypatch.setattr(python, "ImapReader", Lossy)
    with pytest.raises(AssertionError, match="disagree"):
        machines.one_input(imap)
    with pytest.raises(AssertionError, match="ImapReader call"):
        readers.one_input(literals)


def test_auth_http_catches_a_reading_that_depends_on_the_cuts(monkeypatch):
    data = (CORPUS / "auth_http" / "ok-in-pieces").read_bytes()
    auth_http.one_input(data)
    real = auth_http._Connection.buffer_updated

    def forgetful(self, nbytes):  # each read parsed alone: the headers are cut apart
        self.data = b""
        real(self, nbytes)

    monkeypatch.setattr(auth_http._Connection, "buffer_updated", forgetful)
    with pytest.raises(AssertionError):
        auth_http.one_input(data)

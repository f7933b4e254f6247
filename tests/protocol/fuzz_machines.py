"""Drive the client and backend machines with arbitrary bytes.

Used by the property tests (hypothesis) and as an atheris target:

    PYTHONPATH=engine:tests/protocol python tests/protocol/fuzz_machines.py -runs=100000

Every input must end in actions only; the only exception a caller may see is
MachineStateError for calling an input the state does not allow, which this
driver never does.  State must stay bounded whatever the input.
"""

from __future__ import annotations

import sys

from factory import server_config

from mailgate.protocol import (
    AuthFailed,
    AuthInternalError,
    AuthOK,
    AuthRequest,
    AuthRetry,
    Close,
    ConnectBackend,
    ImapServer,
    LoginDone,
    LoginFailed,
    Pop3Server,
    SmtpServer,
    StartTLS,
)

MACHINES = (ImapServer, Pop3Server, SmtpServer)
PROTOCOLS = ("imap", "pop3", "smtp")
RESULTS = (AuthOK("127.0.0.1", 143, password=b"pw"), AuthFailed(b"no", wait=1),
           AuthFailed(b"no"), AuthRetry(0), AuthRetry(2), AuthInternalError())


def _config(selector: int, protocol: str):
    return server_config(
        protocol, imap_client_buffer=(24, 64, 4096)[selector % 3],
        smtp_client_buffer=(24, 64, 4096)[selector % 3],
        starttls=("off", "on", "only")[(selector >> 2) % 3],
        imap_auth=("plain", "login", "cram-md5", "external"),
        pop3_auth=("plain", "apop", "cram-md5", "external"),
        smtp_auth=("plain", "login", "cram-md5", "external", "none"),
        smtp_greeting_delay=1 if selector & 0x40 else 0,
        max_errors=(selector >> 4) % 4 + 1, proxy_buffer=(16, 4096)[selector & 1],
        proxy_pass_error_message=bool(selector & 0x80))


def check_bounded(m) -> None:
    assert m.buffer.capacity in (24, 64, 128, 4096)
    assert len(m.reader.args) <= 11
    assert len(getattr(m.reader, "tag", b"")) <= 33


def drive(data: bytes, implementation: str | None = None) -> None:
    """Interpret ``data``: a config selector, then chunks of client bytes and events."""
    if len(data) < 2:
        return
    selector, which = data[0], data[1] % 3
    m = MACHINES[which](_config(selector, PROTOCOLS[which]), implementation=implementation,
                        rand=lambda: 1, now=lambda: 2)
    actions = m.start()
    pos = 2
    backend = None
    while pos < len(data) and not any(isinstance(a, (Close, LoginDone, LoginFailed))
                                      for a in actions):
        op, size = data[pos] % 8, data[pos] >> 3
        chunk = data[pos + 1:pos + 1 + size]
        pos += 1 + size
        if backend is not None:
            actions = backend.receive_data(chunk) if op else backend.timer_expired()
            continue
        if m.phase == "starttls":
            actions = m.tls_established() if op & 1 else m.receive_data(chunk)
        elif m.phase == "auth-request":
            actions = m.auth_result(RESULTS[op % len(RESULTS)])
        elif m.phase == "proxy":
            backend = m.backend_login()
            actions = backend.start()
        elif op == 0:
            actions = m.timer_expired()
        elif op == 1 and m.want_read:
            view = m.get_buffer()
            n = min(len(view), len(chunk))
            view[:n] = chunk[:n]
            actions = m.buffer_updated(n)
        else:
            actions = m.receive_data(chunk)
        for a in actions:
            assert isinstance(a, (AuthRequest, ConnectBackend, StartTLS)) or type(a).__module__ \
                == "mailgate.protocol.events"
        check_bounded(m)
        if backend is not None:
            assert backend.buffer.capacity in (16, 4096)


def main() -> None:
    import atheris

    atheris.Setup(sys.argv, lambda data: drive(data))
    atheris.Fuzz()


if __name__ == "__main__":
    main()

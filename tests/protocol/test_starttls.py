"""Nothing pipelined behind STARTTLS/STLS is ever executed (CVE-2014-3556 class)."""

from __future__ import annotations

import pytest

from mailgate.protocol import AuthRequest, ImapServer, Pop3Server, Send, SmtpServer, StartTLS

from tests.protocol.harness import Harness, server_config

CASES = [
    (ImapServer, "imap", b"a1 STARTTLS\r\na2 LOGIN evil pass\r\na3 CAPABILITY\r\n",
     b"a1 OK completed\r\n", b"a4 NOOP\r\n", b"a4 OK completed\r\n"),
    (Pop3Server, "pop3", b"STLS\r\nUSER evil\r\nPASS pass\r\nCAPA\r\n",
     b"+OK\r\n", b"NOOP\r\n", b"+OK\r\n"),
    (SmtpServer, "smtp", b"STARTTLS\r\nEHLO evil\r\nAUTH PLAIN AGV2aWwAcGFzcw==\r\nHELP\r\n",
     b"220 2.0.0 Start TLS\r\n", b"NOOP\r\n", b"250 2.0.0 OK\r\n"),
]


@pytest.mark.parametrize("machine, protocol, burst, reply, later, later_reply", CASES,
                         ids=[c[1] for c in CASES])
@pytest.mark.parametrize("split", [None, 1, 7])
def test_pipelined_input_after_starttls_is_dropped(impl, machine, protocol, burst, reply,
                                                   later, later_reply, split):
    h = Harness(machine(server_config(protocol, starttls="on"), implementation=impl))
    h.start()
    if split is None:
        out = h.feed(burst)
    else:
        # the injected bytes may arrive in the same read or in later ones
        out = b"".join(h.feed(burst[i:i + split]) for i in range(0, len(burst), split))
    assert out == reply
    assert isinstance(h.actions[-1], StartTLS)
    assert h.all(AuthRequest) == []
    assert h.m.buffer.pending() == b"" and h.m.take_unread() == b""
    assert len(h.m.get_buffer()) == 0          # nothing may be fed during the handshake
    assert h.feed(b"more plaintext\r\n") == b""
    assert h.call("tls_established") == b""
    assert h.feed(later) == later_reply
    if protocol == "smtp":
        assert h.m.helo is None


def test_bytewise_buffer_feeding_cannot_inject(impl):
    h = Harness(ImapServer(server_config("imap", starttls="on"), implementation=impl))
    h.start()
    data = b"a1 STARTTLS\r\na2 LOGIN evil pass\r\n"
    out = bytearray()
    for i in range(len(data)):
        view = h.m.get_buffer()
        if not len(view):
            break
        view[0] = data[i]
        out += h._take(h.m.buffer_updated(1))
    assert bytes(out) == b"a1 OK completed\r\n"
    assert [a for a in h.actions if isinstance(a, Send)][-1].data == b"a1 OK completed\r\n"
    assert h.all(AuthRequest) == []

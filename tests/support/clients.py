"""Real clients against a host:port with the test CA: imaplib, poplib, smtplib,
``curl`` and ``openssl s_client`` (these two require their component: skipped or failed
without it, see components.py).

Every call is bounded by a timeout.  ``security`` is ``"plain"``, ``"ssl"``
(implicit TLS) or ``"starttls"``.
"""

from __future__ import annotations

import imaplib
import os
import poplib
import re
import smtplib
import ssl
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .certs import PKI, CertFiles
from .components import require
from .users import MailUser

__all__ = [
    "CurlResult",
    "SClientResult",
    "TLS_VERSIONS",
    "client_context",
    "curl",
    "curl_url",
    "imap_fetch",
    "imap_login",
    "open_imap",
    "open_pop3",
    "open_smtp",
    "pop3_retr",
    "s_client",
]

SECURITY = ("plain", "ssl", "starttls")


TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
"""Protocol versions by the names the benchmarks take on their command lines."""


def client_context(
    ca: PKI | str | os.PathLike[str],
    *,
    client_cert: CertFiles | None = None,
    version: ssl.TLSVersion | None = None,
    alpn: Sequence[str] | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A client context that trusts the test root CA (``ca``: the PKI, or a CA file),
    optionally with a client certificate, pinned to one protocol ``version``, offering
    ``alpn`` protocols, limited to TLS 1.2 ``ciphers``."""
    cafile = ca.ca.cert if isinstance(ca, PKI) else ca
    context = ssl.create_default_context(cafile=str(cafile))
    if client_cert is not None:
        context.load_cert_chain(str(client_cert.cert), str(client_cert.key_file))
    if version is not None:
        context.minimum_version = context.maximum_version = version
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


def _check_security(security: str) -> None:
    if security not in SECURITY:
        raise ValueError(f"security must be one of {SECURITY}, not {security!r}")


# -- Python's clients --------------------------------------------------------------


def open_imap(
    host: str,
    port: int,
    *,
    security: str = "plain",
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> imaplib.IMAP4:
    """An :class:`imaplib.IMAP4` (``with`` logs out), after STARTTLS if asked.

    Example: ``with open_imap(*proxy.address("imaps"), security="ssl", context=ctx) as m:``
    """
    _check_security(security)
    if security == "ssl":
        return imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=timeout)
    client = imaplib.IMAP4(host, port, timeout=timeout)
    if security == "starttls":
        client.starttls(context)
    return client


def imap_login(client: imaplib.IMAP4, user: MailUser | str, password: str | None = None) -> bytes:
    """LOGIN with quoted UTF-8 strings (imaplib's own login sends the user as an atom,
    which breaks non-ASCII logins); returns the tagged OK text, raises on NO/BAD."""
    login, secret = (user.login, user.password) if isinstance(user, MailUser) else (user, password)
    assert secret is not None
    previous = client._encoding  # type: ignore[attr-defined]
    client._encoding = "utf-8"  # type: ignore[attr-defined]
    try:
        typ, data = client._simple_command("LOGIN", client._quote(login), client._quote(secret))  # type: ignore[attr-defined]
    finally:
        client._encoding = previous  # type: ignore[attr-defined]
    if typ != "OK":
        raise client.error(data[-1])
    client.state = "AUTH"
    return data[-1]


def imap_fetch(client: imaplib.IMAP4, message_set: str = "1", part: str = "BODY.PEEK[]") -> bytes:
    """The bytes of one FETCH item (default: the whole message, not marking it seen)."""
    typ, data = client.fetch(message_set, f"({part})")
    if typ != "OK" or not data or not isinstance(data[0], tuple):
        raise AssertionError(f"FETCH {message_set} failed: {typ} {data!r}")
    return data[0][1]


def open_pop3(
    host: str,
    port: int,
    *,
    security: str = "plain",
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> poplib.POP3:
    """A :class:`poplib.POP3`, after STLS if asked."""
    _check_security(security)
    if security == "ssl":
        return poplib.POP3_SSL(host, port, context=context, timeout=timeout)
    client = poplib.POP3(host, port, timeout=timeout)
    if security == "starttls":
        client.stls(context)
    return client


def pop3_retr(client: poplib.POP3, which: int = 1) -> bytes:
    """RETR as bytes: poplib's dot-unstuffed lines joined back with CRLF."""
    _response, lines, _octets = client.retr(which)
    return b"".join(line + b"\r\n" for line in lines)


def open_smtp(
    host: str,
    port: int,
    *,
    security: str = "plain",
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
    local_hostname: str = "client.test",
) -> smtplib.SMTP:
    """An :class:`smtplib.SMTP` (``with`` sends QUIT), after EHLO + STARTTLS if asked."""
    _check_security(security)
    if security == "ssl":
        return smtplib.SMTP_SSL(
            host, port, context=context, timeout=timeout, local_hostname=local_hostname
        )
    client = smtplib.SMTP(host, port, timeout=timeout, local_hostname=local_hostname)
    if security == "starttls":
        client.starttls(context=context)
    return client


# -- curl ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CurlResult:
    """curl's exit code and output (stdout: the fetched data)."""

    returncode: int
    stdout: bytes
    stderr: str
    argv: tuple[str, ...]

    def check(self) -> CurlResult:
        """Raise AssertionError unless curl exited 0."""
        if self.returncode != 0:
            raise AssertionError(
                f"curl exited {self.returncode}: {' '.join(self.argv)}\n{self.stderr}"
            )
        return self


def curl_url(scheme: str, host: str, port: int, path: str = "") -> str:
    """``scheme://host:port/path`` (IPv6 hosts bracketed)."""
    if scheme not in ("imap", "imaps", "pop3", "pop3s", "smtp", "smtps"):
        raise ValueError(f"unsupported curl scheme {scheme!r}")
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}/{path.lstrip('/')}"


def curl(
    url: str,
    *,
    pki: PKI,
    user: MailUser | None = None,
    ssl_reqd: bool = False,
    client_cert: CertFiles | None = None,
    mail_from: str | None = None,
    mail_rcpt: Sequence[str] = (),
    upload: bytes | None = None,
    extra: Sequence[str] = (),
    timeout: float = 20.0,
) -> CurlResult:
    """Run curl against ``url`` trusting the test CA.

    Examples::

        curl(curl_url("imaps", h, p, "INBOX;UID=1"), pki=pki, user=ALICE).check().stdout
        curl(curl_url("pop3", h, p, "1"), pki=pki, user=ALICE, ssl_reqd=True)   # STLS
        curl(curl_url("smtp", h, p), pki=pki, user=ALICE, mail_from="a@x.test",
             mail_rcpt=["b@y.test"], upload=message)
    """
    require("curl")
    argv = [
        "curl",
        "--silent",
        "--show-error",
        "--cacert",
        str(pki.ca.cert),
        "--max-time",
        str(timeout),
        "--connect-timeout",
        str(min(timeout, 10.0)),
    ]
    if user is not None:
        argv += ["--user", f"{user.login}:{user.password}"]
    if ssl_reqd:
        argv.append("--ssl-reqd")
    if client_cert is not None:
        argv += ["--cert", str(client_cert.cert), "--key", str(client_cert.key_file)]
    if mail_from is not None:
        argv += ["--mail-from", mail_from]
    for rcpt in mail_rcpt:
        argv += ["--mail-rcpt", rcpt]
    if upload is not None:
        argv += ["--upload-file", "-"]
    argv += [*extra, url]
    try:
        done = subprocess.run(
            argv, input=upload, capture_output=True, timeout=timeout + 5, check=False
        )
    except subprocess.TimeoutExpired as exc:
        seen = (exc.stderr or b"").decode(errors="replace")
        raise AssertionError(
            f"curl did not finish in {timeout + 5}s: {' '.join(argv)}\n{seen}"
        ) from None
    return CurlResult(
        done.returncode, done.stdout, done.stderr.decode(errors="replace"), tuple(argv)
    )


# -- openssl s_client ---------------------------------------------------------------

_HANDSHAKE = re.compile(rb"^(New|Reused), (\S+), Cipher is (\S+)", re.MULTILINE)
_VERIFY = re.compile(rb"Verify return code: (\d+) \(([^)]*)\)")


@dataclass(frozen=True)
class SClientResult:
    """What ``openssl s_client`` printed, with the handshake facts parsed."""

    returncode: int
    stdout: bytes
    stderr: str
    argv: tuple[str, ...]

    @property
    def handshakes(self) -> list[tuple[str, str, str]]:
        """``(New|Reused, protocol, cipher)`` per handshake (several with -reconnect)."""
        return [
            (m.group(1).decode(), m.group(2).decode().rstrip(","), m.group(3).decode())
            for m in _HANDSHAKE.finditer(self.stdout)
        ]

    @property
    def reused_count(self) -> int:
        """How many handshakes resumed a session."""
        return sum(1 for kind, _, _ in self.handshakes if kind == "Reused")

    @property
    def verify_code(self) -> int | None:
        """The server certificate's verify result (0 = ok), None if not printed."""
        match = _VERIFY.search(self.stdout)
        return int(match.group(1)) if match else None


_GREETING = re.compile(rb"^(?:\* OK|\+OK|220[ -])", re.MULTILINE)


def s_client(
    host: str,
    port: int,
    *,
    pki: PKI,
    starttls: str | None = None,
    send: bytes = b"",
    client_cert: CertFiles | None = None,
    sess_out: Path | None = None,
    sess_in: Path | None = None,
    reconnect: bool = False,
    tls_version: str | None = None,
    wait_for_greeting: bool | None = None,
    extra: Sequence[str] = (),
    timeout: float = 20.0,
) -> SClientResult:
    """Run ``openssl s_client`` against ``host:port``, feed ``send``, and wait until
    the server closes (``-ign_eof``) or ``timeout``.

    ``starttls`` is ``"imap"``, ``"pop3"`` or ``"smtp"``; ``tls_version`` e.g.
    ``"tls1_2"`` becomes ``-tls1_2``.  Without ``send`` the client hangs up right after
    the handshake.  With implicit TLS, ``send`` is written only once the server's
    greeting arrived (``wait_for_greeting``, default on without ``starttls``): nginx
    1.22 can leave a command that arrives together with the TLS 1.3 Finished unread
    until more data comes.

    Example::

        r = s_client(h, p, pki=pki, starttls="imap", send=b"a LOGOUT\r\n")
        assert r.verify_code == 0 and b"* BYE" in r.stdout
    """
    if starttls not in (None, "imap", "pop3", "smtp"):
        raise ValueError(f"unsupported -starttls {starttls!r}")
    require("openssl")
    argv = [
        "openssl",
        "s_client",
        "-connect",
        f"{host}:{port}",
        "-CAfile",
        str(pki.ca.cert),
        "-verify_return_error",
        "-servername",
        "localhost",
    ]
    if starttls:
        argv += ["-starttls", starttls]
    if client_cert is not None:
        argv += ["-cert", str(client_cert.cert), "-key", str(client_cert.key_file)]
    if sess_out is not None:
        argv += ["-sess_out", str(sess_out)]
    if sess_in is not None:
        argv += ["-sess_in", str(sess_in)]
    if reconnect:
        argv.append("-reconnect")
    if tls_version:
        argv.append(f"-{tls_version}")
    if send:
        argv.append("-ign_eof")
    argv += list(extra)
    if wait_for_greeting is None:
        wait_for_greeting = bool(send) and starttls is None and not reconnect
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = bytearray(), bytearray()
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        if wait_for_greeting:
            while not _GREETING.search(out) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        assert proc.stdin is not None
        try:
            proc.stdin.write(send)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        for reader in readers:
            reader.join(5)
        seen = (bytes(out) + bytes(err)).decode(errors="replace")
        raise AssertionError(
            f"openssl s_client did not finish in {timeout}s: {' '.join(argv)}\n{seen}"
        ) from None
    for reader in readers:
        reader.join(5)
    return SClientResult(
        proc.returncode, bytes(out), bytes(err).decode(errors="replace"), tuple(argv)
    )


def _drain(stream: IO[bytes] | None, into: bytearray) -> None:
    assert stream is not None
    while chunk := stream.read1(65536):  # type: ignore[attr-defined]
        into += chunk

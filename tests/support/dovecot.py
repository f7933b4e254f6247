"""A private Dovecot (IMAP + POP3) per test session, on dynamic loopback ports.

Its configuration, sockets, state, logs and Maildirs all live in one directory of the
test's; the system's /etc/dovecot is never read (``-c`` points at our file and
``base_dir``/``state_dir`` are ours).

Running as root: Dovecot refuses mail processes with uid 0, and the pytest temporary
directory (``/tmp/pytest-of-root``, mode 0700) cannot be traversed by any other user.
So mail processes run as ``nobody`` and *chroot* into the mail root (chroot happens
while still root, so the 0700 ancestors do not matter); auth processes run as root to
read the passwd-file.  Users are passwd-file entries with ``{PLAIN}`` passwords.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from .components import DOVECOT
from .ports import PortAllocator
from .procs import ServerProcess, StartupError, wait_for_listen
from .users import DEFAULT_USERS, MailUser

__all__ = ["Dovecot", "StoredMessage"]

_MAIL_USER = "nobody"
_serial = itertools.count(1)


@dataclass(frozen=True)
class StoredMessage:
    """A message placed in a Maildir; ``data`` is exactly what was written."""

    user: str
    mailbox: str
    data: bytes
    base_name: str  # the Maildir file name up to the ":2," info part

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


class Dovecot:
    """Dovecot with IMAP and POP3 on loopback (optionally IMAPS/POP3S and STARTTLS).

    Example::

        dovecot = Dovecot(tmp_path / "dovecot", ports, users=DEFAULT_USERS)
        msg = dovecot.deliver("alice", make_message("hi"))
        dovecot.start()
        imap = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
        ...
        dovecot.stop()
    """

    def __init__(
        self,
        directory: Path | str,
        ports: PortAllocator,
        *,
        users: Iterable[MailUser] = DEFAULT_USERS,
        host: str = "127.0.0.1",
        tls: tuple[Path, Path] | None = None,
        settings: Mapping[str, str] | None = None,
        extra: str = "",
    ) -> None:
        """``tls`` is ``(certificate_chain, key)``: enables IMAPS, POP3S, STARTTLS.

        ``settings`` are extra top-level ``name = value`` lines for dovecot.conf, and
        ``extra`` is more text for its end (sections: a second passdb, ...).
        """
        self.directory = Path(directory)
        self.host = host
        self.users = {u.login: u for u in users}
        self.tls = tls
        self.settings = dict(settings or {})
        self.extra = extra
        self._ports = ports
        count = 4 if tls else 2
        allocated = ports.allocate(count)
        self.imap_port, self.pop3_port = allocated[:2]
        self.imaps_port, self.pop3s_port = (allocated[2], allocated[3]) if tls else (None, None)
        self._allocated = allocated
        self.mail_root = self.directory / "mail"
        self.config_path = self.directory / "dovecot.conf"
        self.log_path = self.directory / "dovecot.log"
        self.process: ServerProcess | None = None
        self._messages: dict[tuple[str, str], list[StoredMessage]] = {}
        entry = pwd.getpwnam(_MAIL_USER)
        self._uid, self._gid = entry.pw_uid, entry.pw_gid
        self._prepare()

    # -- files ------------------------------------------------------------------

    def _prepare(self) -> None:
        for sub in ("run", "state", "mail"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        passwd = "".join(f"{u.login}:{{PLAIN}}{u.password}\n" for u in self.users.values())
        passwd_path = self.directory / "passwd"
        passwd_path.write_text(passwd, encoding="utf-8")
        passwd_path.chmod(0o600)
        for login in self.users:
            self._maildir(login, "INBOX")
        self.config_path.write_text(self._config(passwd_path), encoding="utf-8")

    def _config(self, passwd_path: Path) -> str:
        d = self.directory
        lines = [
            f"base_dir = {d / 'run'}",
            f"state_dir = {d / 'state'}",
            # Distinct process titles per instance; also keeps doveadm away from ours.
            f"instance_name = mailgate-test-{os.getpid()}-{next(_serial)}",
            f"log_path = {self.log_path}",
            f"info_log_path = {self.log_path}",
            "protocols = imap pop3",
            f"listen = {self.host}",
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain login",
            # Allow any byte in user names (the non-ASCII user) and keep case as given.
            "auth_username_chars =",
            "auth_username_format = %u",
            "auth_verbose = yes",
            # Failed logins answer at once (default: 2 s).
            "auth_failure_delay = 0",
            "mail_location = maildir:~/Maildir",
            f"valid_chroot_dirs = {self.mail_root}",
            "first_valid_uid = 1",
            "mail_max_userip_connections = 10000",
            "default_process_limit = 1000",
            "default_client_limit = 4000",
            "pop3_uidl_format = %08Xu%08Xv",
            f"passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {passwd_path}\n}}",
            # "/./" makes Dovecot chroot to the mail root before dropping to nobody.
            (
                "userdb {\n  driver = static\n"
                f"  args = uid={self._uid} gid={self._gid} home={self.mail_root}/./%u\n}}"
            ),
            "service auth {\n  user = root\n}",
            "service auth-worker {\n  user = root\n}",
            # No per-IP penalty after failed logins (2, 4, 8, 15 s): every client here
            # is 127.0.0.1, so one test's bad password would slow the next test's login.
            "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}",
            # One long-lived login process serving many clients: fast and no
            # per-connection fork, so hundreds of sessions through a proxy fit.
            self._login_service("imap", self.imap_port, self.imaps_port),
            self._login_service("pop3", self.pop3_port, self.pop3s_port),
        ]
        if self.tls:
            chain, key = self.tls
            lines += ["ssl = yes", f"ssl_cert = <{chain}", f"ssl_key = <{key}"]
        else:
            lines.append("ssl = no")
        lines += [f"{name} = {value}" for name, value in self.settings.items()]
        if self.extra:
            lines.append(self.extra)
        return "\n".join(lines) + "\n"

    @staticmethod
    def _login_service(proto: str, port: int, tls_port: int | None) -> str:
        return (
            f"service {proto}-login {{\n"
            f"  inet_listener {proto} {{\n    port = {port}\n  }}\n"
            f"  inet_listener {proto}s {{\n    port = {tls_port or 0}\n"
            f"    ssl = {'yes' if tls_port else 'no'}\n  }}\n"
            "  service_count = 0\n  process_min_avail = 1\n  client_limit = 2000\n"
            "}"
        )

    def _maildir(self, login: str, mailbox: str) -> Path:
        if login not in self.users:
            raise KeyError(f"unknown mail user {login!r}")
        home = self.mail_root / login
        path = home / "Maildir"
        if mailbox != "INBOX":
            path = path / f".{mailbox}"
        if not path.is_dir():
            for sub in ("cur", "new", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            if mailbox != "INBOX":
                (path / "maildirfolder").touch()
            self._chown_tree(home)
        return path

    def _chown_tree(self, top: Path) -> None:
        for root, dirs, files in os.walk(top):
            os.chown(root, self._uid, self._gid)
            for name in files:
                os.chown(os.path.join(root, name), self._uid, self._gid)

    def deliver(
        self, login: str, data: bytes, mailbox: str = "INBOX", flags: str = ""
    ) -> StoredMessage:
        """Place a message in a user's mailbox; it becomes the mailbox's last message.

        Works before and after :meth:`start`.  ``flags`` are Maildir flag letters,
        e.g. ``"S"`` for \\Seen.  Give CRLF line ends for byte-exact comparisons.
        """
        folder = self._maildir(login, mailbox)
        # A zero-padded sequence as the "time" part keeps Dovecot's UID order equal
        # to delivery order (new files are sorted by name when UIDs are assigned).
        base = f"{next(_serial):010d}.M1P{os.getpid()}.mailgate,S={len(data)}"
        tmp = folder / "tmp" / base
        tmp.write_bytes(data)
        os.chown(tmp, self._uid, self._gid)
        os.rename(tmp, folder / "cur" / f"{base}:2,{flags}")
        message = StoredMessage(login, mailbox, data, base)
        self._messages.setdefault((login, mailbox), []).append(message)
        return message

    def delivered(self, login: str, mailbox: str = "INBOX") -> list[StoredMessage]:
        """Messages placed with :meth:`deliver`, in order (= IMAP sequence order)."""
        return list(self._messages.get((login, mailbox), []))

    def stored_bytes(self, message: StoredMessage) -> bytes:
        """Read the message's file as it is on disk now (Dovecot renames on flag changes)."""
        folder = self._maildir(message.user, message.mailbox)
        for sub in ("cur", "new"):
            for path in (folder / sub).glob(f"{message.base_name}*"):
                return path.read_bytes()
        raise FileNotFoundError(f"message {message.base_name} of {message.user} is gone")

    # -- process ----------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start Dovecot in the foreground and wait until IMAP and POP3 listen."""
        if self.process is not None:
            raise RuntimeError("Dovecot already started")
        self.process = ServerProcess(
            [DOVECOT, "-F", "-c", self.config_path],
            log_dir=self.directory,
            name="dovecot",
        )
        self.process.start()
        listen = [(self.host, p) for p in self._allocated]
        try:
            wait_for_listen(listen, timeout, alive=self.process.alive)
        except StartupError as exc:
            self.stop()
            raise StartupError(f"Dovecot did not start: {exc}\n{self.diagnostics()}") from None

    def stop(self) -> None:
        """Stop Dovecot and every process it started; release the ports."""
        if self.process is not None:
            # Dovecot's master usually exits ~1 s after SIGTERM but sometimes lingers for
            # seconds; what is left after 2 s is killed (its state is throw-away).
            self.process.stop(timeout=2.0, sig=signal.SIGTERM)
            self.process = None
        self._ports.release(*self._allocated)

    def log_text(self) -> str:
        """Dovecot's log file so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def diagnostics(self) -> str:
        """Log and console output, for failure messages."""
        console = self.process.output() if self.process else ""
        return f"--- dovecot.log ---\n{self.log_text()}--- console ---\n{console}"

    def remove(self) -> None:
        """Stop and delete the instance's directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

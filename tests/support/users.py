"""The mail users every backend and the default auth policy know."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALICE", "BOB", "BULK", "DEFAULT_USERS", "JOERG", "MailUser"]


@dataclass(frozen=True)
class MailUser:
    """A login and its clear-text password (never contains ``:`` or a line break)."""

    login: str
    password: str

    def __post_init__(self) -> None:
        for ch in ":\r\n\0":
            if ch in self.login or ch in self.password:
                raise ValueError(f"login or password of {self.login!r} contains {ch!r}")

    @property
    def login_bytes(self) -> bytes:
        """The login as it travels on the wire (UTF-8)."""
        return self.login.encode()

    @property
    def password_bytes(self) -> bytes:
        """The password as it travels on the wire (UTF-8)."""
        return self.password.encode()


ALICE = MailUser("alice", "alice-secret")
BOB = MailUser("bob", "secret pass")  # a space: nginx escapes it as %20 in Auth-Pass
JOERG = MailUser("jörg", "grüße-1")  # non-ASCII login and password (UTF-8 on the wire)
BULK = MailUser("bulk", "bulk-secret")  # owns the 10 MB message

DEFAULT_USERS: tuple[MailUser, ...] = (ALICE, BOB, JOERG, BULK)

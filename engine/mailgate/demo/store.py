"""The demo backend's memory: users, their mailboxes and the messages in them.

One :class:`Mailstore` is shared by the IMAP, POP3 and SMTP servers of a
:class:`~mailgate.demo.DemoMailServer` (and may be shared by several servers, on
several event loops).  Every read and write of mailbox state takes the store's
lock, so a test thread can seed and inspect a store that a server thread is using.
A message's bytes never change once stored; its flags are replaced as a whole
(a ``frozenset``), so a reader never sees a half-updated set.
"""

from __future__ import annotations

import datetime as _dt
import hmac
import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from mailgate.demo import _mime

INBOX = "INBOX"

SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
DRAFT = "\\Draft"
RECENT = "\\Recent"

#: The system flags a client may set, in the order SELECT lists them.
SYSTEM_FLAGS = (ANSWERED, FLAGGED, DELETED, SEEN, DRAFT)
_CANONICAL = {f.lower(): f for f in SYSTEM_FLAGS + (RECENT,)}


def canonical_flag(flag: str) -> str:
    """System flags are case-insensitive: ``\\SEEN`` is stored as ``\\Seen``."""
    return _CANONICAL.get(flag.lower(), flag)


class UnknownUser(KeyError):
    """No user of that name in the store."""


class UnknownMailbox(KeyError):
    """The user has no mailbox of that name."""


class Message:
    """One stored message: its exact bytes, UID, flags and internal date."""

    def __init__(self, uid: int, data: bytes, flags: frozenset[str],
                 internal_date: _dt.datetime) -> None:
        self.uid = uid
        self.data = data
        self.flags = flags
        self.internal_date = internal_date

    @cached_property
    def structure(self) -> _mime.Part:
        """The parsed header and MIME tree (computed once: the bytes never change)."""
        return _mime.parse(self.data)

    def __repr__(self) -> str:
        return f"Message(uid={self.uid}, {len(self.data)} bytes, flags={sorted(self.flags)})"


class Mailbox:
    """A mailbox of one user: messages in UID order, UIDVALIDITY, UIDNEXT.

    The methods take the store's lock; the protocol sessions use them and never
    touch ``_messages`` directly.
    """

    def __init__(self, name: str, uidvalidity: int, lock: threading.RLock) -> None:
        self.name = name
        self.uidvalidity = uidvalidity
        self._lock = lock
        self._messages: list[Message] = []
        self._uidnext = 1
        # UIDs that no read-write SELECT has seen yet (IMAP's \Recent)
        self._recent: set[int] = set()

    def __repr__(self) -> str:
        return f"Mailbox({self.name!r}, {len(self._messages)} messages)"

    def snapshot(self) -> list[Message]:
        """The messages now in the mailbox, in UID order (a copy of the list)."""
        with self._lock:
            return list(self._messages)

    def append(self, data: bytes, flags: Iterable[str] = (),
               internal_date: _dt.datetime | None = None) -> Message:
        """Store ``data`` as a new message and return it."""
        if not isinstance(data, bytes):
            raise TypeError("a message is bytes")
        if internal_date is None:
            internal_date = _dt.datetime.now(_dt.UTC).astimezone().replace(microsecond=0)
        elif internal_date.tzinfo is None:
            raise ValueError("internal_date must be timezone-aware")
        flagset = frozenset(canonical_flag(f) for f in flags) - {RECENT}
        with self._lock:
            message = Message(self._uidnext, data, flagset, internal_date)
            self._uidnext += 1
            self._messages.append(message)
            self._recent.add(message.uid)
            return message

    def open(self, *, claim_recent: bool) -> tuple[list[Message], int, set[int]]:
        """An IMAP SELECT: the messages, UIDNEXT and the \\Recent UIDs, at one instant.

        With ``claim_recent`` (a read-write SELECT) the messages stop being
        recent for everyone else.
        """
        with self._lock:
            recent = set(self._recent)
            if claim_recent:
                self._recent.clear()
            return list(self._messages), self._uidnext, recent

    def recent_uids(self) -> set[int]:
        """The UIDs no read-write SELECT has seen yet."""
        with self._lock:
            return set(self._recent)

    def claim_recent(self, uids: Iterable[int]) -> set[int]:
        """Take the \\Recent mark off ``uids``; return those that had it."""
        with self._lock:
            claimed = self._recent.intersection(uids)
            self._recent = self._recent - claimed
            return set(claimed)

    def update_flags(self, message: Message, mode: str, flags: Iterable[str]) -> frozenset[str]:
        """Set (``mode`` "set"), add ("add") or remove ("remove") flags; return the new set."""
        change = frozenset(canonical_flag(f) for f in flags) - {RECENT}
        with self._lock:
            if mode == "set":
                new = change
            elif mode == "add":
                new = message.flags | change
            elif mode == "remove":
                new = message.flags - change
            else:
                raise ValueError(f"unknown flag update mode {mode!r}")
            message.flags = new
            return new

    def expunge(self, uids: Iterable[int] | None = None) -> list[Message]:
        """Remove the messages flagged \\Deleted (only among ``uids`` when given)."""
        allowed = None if uids is None else set(uids)
        with self._lock:
            gone = [m for m in self._messages
                    if DELETED in m.flags and (allowed is None or m.uid in allowed)]
            self._remove({m.uid for m in gone})
            return gone

    def remove(self, uids: Iterable[int]) -> int:
        """Remove the messages with these UIDs, deleted or not (POP3's QUIT)."""
        doomed = set(uids)
        with self._lock:
            before = len(self._messages)
            self._remove(doomed)
            return before - len(self._messages)

    def _remove(self, uids: set[int]) -> None:
        if uids:
            self._messages = [m for m in self._messages if m.uid not in uids]
            self._recent -= uids

    def status(self) -> dict[str, int]:
        """MESSAGES, RECENT, UIDNEXT, UIDVALIDITY and UNSEEN, as IMAP's STATUS names them."""
        with self._lock:
            return {
                "MESSAGES": len(self._messages),
                "RECENT": len(self._recent),
                "UIDNEXT": self._uidnext,
                "UIDVALIDITY": self.uidvalidity,
                "UNSEEN": sum(1 for m in self._messages if SEEN not in m.flags),
            }


@dataclass
class _User:
    name: str
    password: bytes = field(repr=False)
    addresses: frozenset[str]
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    subscribed: set[str] = field(default_factory=set)


def _password_bytes(password: str | bytes) -> bytes:
    return password.encode("utf-8") if isinstance(password, str) else bytes(password)


class Mailstore:
    """Users with passwords and their mailboxes, kept in memory.

    ::

        store = Mailstore()
        store.add_user("alice", "wonderland")          # mail to alice@<any domain>
        store.add_user("bob", "builder", addresses=["bob@example.com"])
        store.deliver("alice", b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
        store.check_password("alice", "wonderland")    # True
        store.messages("alice")                        # [b"Subject: hi\\r\\n..."]

    Thread-safe: all state is behind one lock.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._users: dict[str, _User] = {}
        # distinct, increasing UIDVALIDITY values, as a restarted server must give
        self._uidvalidity = itertools.count(int(time.time()) & 0x7FFFFFFF or 1)

    def __repr__(self) -> str:
        with self._lock:
            return f"Mailstore(users={sorted(self._users)})"

    # -- users ---------------------------------------------------------------

    def add_user(self, name: str, password: str | bytes, *,
                 addresses: Iterable[str] | None = None) -> None:
        """Add a user with an INBOX.

        ``addresses`` are the recipient addresses SMTP delivers to this user
        (compared case-insensitively).  Without them, the user's addresses are
        ``name`` itself and any address whose local part is ``name``
        (``alice@localhost``, ``alice@example.com``).
        """
        if not name or any(c in name for c in "\0\r\n"):
            raise ValueError("a user name must be non-empty, without NUL, CR or LF")
        addrs = frozenset(a.lower() for a in (addresses or ()))
        with self._lock:
            if name in self._users:
                raise ValueError(f"user {name!r} already exists")
            user = _User(name, _password_bytes(password), addrs)
            self._users[name] = user
            self._new_mailbox(user, INBOX)

    def users(self) -> list[str]:
        """The user names, sorted."""
        with self._lock:
            return sorted(self._users)

    def check_password(self, name: str | bytes, password: str | bytes) -> bool:
        """True when ``name`` is a user whose password is ``password``."""
        user = self._find_user(name)
        # compare even for an unknown user, so the answer takes the same time
        stored = user.password if user is not None else b"\0" * 16
        return hmac.compare_digest(stored, _password_bytes(password)) and user is not None

    def recipient(self, address: str) -> str | None:
        """The user that SMTP mail for ``address`` goes to, or None."""
        address = address.lower()
        local = address.rpartition("@")[0] if "@" in address else address
        with self._lock:
            for user in self._users.values():
                if address in user.addresses:
                    return user.name
            for user in self._users.values():
                if not user.addresses and user.name.lower() in (local, address):
                    return user.name
        return None

    def _find_user(self, name: str | bytes) -> _User | None:
        if isinstance(name, bytes):
            try:
                name = name.decode("utf-8")
            except UnicodeDecodeError:
                return None
        with self._lock:
            return self._users.get(name)

    def _user(self, name: str) -> _User:
        user = self._find_user(name)
        if user is None:
            raise UnknownUser(name)
        return user

    # -- mailboxes -----------------------------------------------------------

    def _new_mailbox(self, user: _User, name: str) -> Mailbox:
        box = Mailbox(name, next(self._uidvalidity), self._lock)
        user.mailboxes[name] = box
        user.subscribed.add(name)
        return box

    @staticmethod
    def _key(name: str) -> str:
        # INBOX is case-insensitive, every other name is not (RFC 3501 5.1)
        return INBOX if name.upper() == INBOX else name

    def add_mailbox(self, user: str, name: str) -> Mailbox:
        """Create mailbox ``name`` for ``user`` (or return the existing one)."""
        if not name or any(c in name for c in "\0\r\n*%\"\\") or name.startswith("/"):
            raise ValueError(f"invalid mailbox name {name!r}")
        with self._lock:
            u = self._user(user)
            key = self._key(name)
            return u.mailboxes.get(key) or self._new_mailbox(u, key)

    def mailbox(self, user: str, name: str = INBOX) -> Mailbox:
        """The user's mailbox ``name``; raises :class:`UnknownMailbox`."""
        with self._lock:
            box = self._user(user).mailboxes.get(self._key(name))
            if box is None:
                raise UnknownMailbox(name)
            return box

    def mailbox_names(self, user: str) -> list[str]:
        """The user's mailbox names, INBOX first."""
        with self._lock:
            names = sorted(self._user(user).mailboxes)
        names.remove(INBOX)
        return [INBOX] + names

    def subscriptions(self, user: str) -> set[str]:
        """The mailbox names the user is subscribed to (IMAP LSUB)."""
        with self._lock:
            return set(self._user(user).subscribed)

    def subscribe(self, user: str, name: str, on: bool = True) -> None:
        """Subscribe (or unsubscribe) ``user`` to ``name``."""
        with self._lock:
            subs = self._user(user).subscribed
            if on:
                subs.add(self._key(name))
            else:
                subs.discard(self._key(name))

    # -- messages ------------------------------------------------------------

    def deliver(self, user: str, data: bytes, *, mailbox: str = INBOX,
                flags: Iterable[str] = (), internal_date: _dt.datetime | None = None) -> int:
        """Store ``data`` (exact bytes) in the user's mailbox; return its UID."""
        return self.mailbox(user, mailbox).append(data, flags, internal_date).uid

    def messages(self, user: str, mailbox: str = INBOX) -> list[bytes]:
        """The bytes of every message in the mailbox, in UID order."""
        return [m.data for m in self.mailbox(user, mailbox).snapshot()]

    def flags(self, user: str, mailbox: str = INBOX) -> dict[int, frozenset[str]]:
        """UID -> flags of every message in the mailbox."""
        return {m.uid: m.flags for m in self.mailbox(user, mailbox).snapshot()}

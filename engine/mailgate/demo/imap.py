"""IMAP4rev1 (an RFC 3501 subset, with LITERAL+, SASL-IR, UIDPLUS, UNSELECT), sans-I/O.

A command is collected whole before it runs: its lines, and the literals they
announce (``{n}`` gets a ``+`` continuation, ``{n+}`` does not).  The selected
mailbox is seen through the session's own list of messages (the *view*), which is
brought up to date after every command: new messages are announced with EXISTS
and RECENT, messages removed by another session with EXPUNGE (never while
answering FETCH, STORE or SEARCH, RFC 3501 7.4.1), flags changed elsewhere with
an unsolicited FETCH.

Left out, and answered with BAD (unknown) or NO: STARTTLS (the proxy in front
does TLS), IDLE, NAMESPACE, ID, ENABLE, MOVE, DELETE, RENAME, BINARY and the
CONDSTORE family; group syntax in ENVELOPE addresses is flattened.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar

from mailgate.demo import _imapfetch, _imapsearch
from mailgate.demo._imapwire import (
    LITERAL_AT_END,
    Atom,
    Bad,
    No,
    SequenceSet,
    astring,
    atom,
    flag_list,
    flags_list,
    mailbox_name,
    parse_command,
    parse_datetime,
    string,
)
from mailgate.demo._session import (
    BUSY,
    INTERNAL_ERROR,
    SHUTDOWN,
    SKIPPED,
    TIMEOUT,
    TOO_LONG,
    TOO_MANY_ERRORS,
    Session,
    sasl_plain,
    strip_eol,
)
from mailgate.demo.store import (
    RECENT,
    SEEN,
    SYSTEM_FLAGS,
    Mailbox,
    Message,
    UnknownMailbox,
)

CAPABILITIES = b"IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN UIDPLUS UNSELECT"

# the states a command is valid in
NOT_AUTHENTICATED, AUTHENTICATED, SELECTED = 1, 2, 4
ANY = NOT_AUTHENTICATED | AUTHENTICATED | SELECTED
LOGGED_IN = AUTHENTICATED | SELECTED

_STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN")
_STORE_MODES = {"FLAGS": "set", "+FLAGS": "add", "-FLAGS": "remove"}
_TAG = re.compile(rb"[^ \r\n]{1,64}")


def _uid_set(uids: list[int]) -> bytes:
    """A compact uid-set: ``1:3,7``."""
    out = []
    for uid in uids:
        if out and out[-1][1] == uid - 1:
            out[-1][1] = uid
        else:
            out.append([uid, uid])
    return b",".join(b"%d" % a if a == b else b"%d:%d" % (a, b) for a, b in out)


class ImapSession(Session):
    """One IMAP client connection (see :class:`~mailgate.demo._session.Session`)."""

    protocol = "imap"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._parts: list[bytes] = []       # the command collected so far
        self._size = 0
        self._literal = 0                   # literal bytes still to come
        self._sasl_tag: bytes | None = None  # AUTHENTICATE waits for a response line
        self._deselect()

    @property
    def state(self) -> int:
        if self.user is None:
            return NOT_AUTHENTICATED
        return SELECTED if self.mailbox is not None else AUTHENTICATED

    def _deselect(self) -> None:
        self.mailbox: Mailbox | None = None
        self.readonly = False
        self.view: list[Message] = []
        self._recent: set[int] = set()
        self._known_flags: dict[int, frozenset[str]] = {}
        self._max_uid = 0

    # -- replies ------------------------------------------------------------------

    def _untagged(self, text: bytes) -> None:
        self._send(b"* " + text + b"\r\n")

    def _greet(self) -> None:
        self._untagged(b"OK [CAPABILITY " + CAPABILITIES + b"] " + self.hostname
                       + b" mailgate demo IMAP4rev1 server ready")

    _GOODBYES: ClassVar[dict[str, bytes]] = {
        TIMEOUT: b"Disconnected for inactivity.",
        BUSY: b"Too many connections, try again later.",
        TOO_MANY_ERRORS: b"Too many invalid commands.",
        SHUTDOWN: b"Server shutting down.",
        INTERNAL_ERROR: b"Internal server error.",
    }

    def _goodbye(self, reason: str) -> None:
        self._untagged(b"BYE " + self._GOODBYES[reason])

    def _bad(self, tag: bytes | None, text: str) -> None:
        self._send((tag or b"*") + b" BAD " + text.encode("latin-1", "replace") + b"\r\n")
        self._error()

    # -- framing ------------------------------------------------------------------

    def _process(self) -> None:
        limit = self.limits.message_size + self.limits.line_length
        while self._may_continue():
            if self._literal:
                chunk = self.reader.read_bytes(self._literal)
                if not chunk:
                    return
                self._parts.append(chunk)
                self._literal -= len(chunk)
                continue
            line = self.reader.read_line(self.limits.line_length)
            if line is None:
                return
            if line is TOO_LONG or line is SKIPPED:
                self._untagged(b"BYE Command line too long.")
                self.closed = True
                return
            if self._sasl_tag is not None:
                self._authenticate_response(strip_eol(line))
                continue
            self._parts.append(line)
            self._size += len(line)
            m = LITERAL_AT_END.search(line)
            if m is None:
                command = b"".join(self._parts)
                self._parts.clear()
                self._size = 0
                self._execute(command)
                continue
            n = int(m.group(1))
            if self._size + n > limit:
                if m.group(2):
                    # the client is sending it anyway: nothing sensible to do but leave
                    self._untagged(b"BYE Literal too large.")
                    self.closed = True
                    return
                tag = _TAG.match(self._parts[0])
                self._parts.clear()
                self._size = 0
                self._send((tag.group() if tag else b"*") + b" NO [TOOBIG] Literal too large.\r\n")
                self._error()
                continue
            if not m.group(2):
                self._send(b"+ Ready for literal data\r\n")
            self._literal = n
            self._size += n

    def _execute(self, command: bytes) -> None:
        try:
            tag, name, args = parse_command(command)
        except Bad as exc:
            self._bad(exc.tag, str(exc))
            return
        uid = False
        if name == "UID":
            if not args or not isinstance(args[0], Atom):
                self._bad(tag, "UID needs a command")
                return
            name = args.pop(0).upper_str()
            uid = True
            if name not in ("FETCH", "STORE", "SEARCH", "COPY", "EXPUNGE"):
                self._bad(tag, "unknown UID command")
                return
        entry = self._COMMANDS.get(name)
        if entry is None:
            self._bad(tag, "Unknown command.")
            return
        method, states = entry
        if not self.state & states:
            self._bad(tag, f"{name} is not valid in this state.")
            return
        try:
            text = method(self, tag, args, uid)
        except Bad as exc:
            self._sync(expunge=False)
            self._bad(tag, str(exc))
            return
        except No as exc:
            self._sync(expunge=False)
            self._send(tag + b" NO " + str(exc).encode("latin-1") + b"\r\n")
            return
        if text is None:        # the command answers later (AUTHENTICATE) or has said goodbye
            return
        self._sync(expunge=uid or name not in ("FETCH", "STORE", "SEARCH"))
        self._send(tag + b" OK " + text + b"\r\n")

    @staticmethod
    def _arity(args: list, least: int, most: int | None = None) -> None:
        if len(args) < least or len(args) > (least if most is None else most):
            raise Bad("wrong number of arguments")

    # -- any state ------------------------------------------------------------

    def _c_capability(self, tag, args, uid):
        self._arity(args, 0)
        self._untagged(b"CAPABILITY " + CAPABILITIES)
        return b"CAPABILITY completed"

    def _c_noop(self, tag, args, uid):
        self._arity(args, 0)
        return b"NOOP completed"

    def _c_logout(self, tag, args, uid):
        self._arity(args, 0)
        self._untagged(b"BYE Logging out")
        self._send(tag + b" OK LOGOUT completed\r\n")
        self.closed = True

    # -- not authenticated ----------------------------------------------------

    def _c_login(self, tag, args, uid):
        self._arity(args, 2)
        return self._log_in(astring(args[0]), astring(args[1]))

    def _log_in(self, login: bytes, password: bytes) -> bytes:
        if not self.store.check_password(login, password):
            self._error()
            raise No("[AUTHENTICATIONFAILED] Authentication failed.")
        self.user = login.decode("utf-8")
        return b"[CAPABILITY " + CAPABILITIES + b"] Logged in"

    def _c_authenticate(self, tag, args, uid):
        self._arity(args, 1, 2)
        if atom(args[0], "a mechanism").upper_str() != "PLAIN":
            raise No("[CANNOT] Unsupported authentication mechanism.")
        if len(args) == 2:
            response = astring(args[1])
            return self._plain(b"" if response == b"=" else response)
        self._sasl_tag = tag
        self._send(b"+ \r\n")
        return None

    def _authenticate_response(self, response: bytes) -> None:
        tag, self._sasl_tag = self._sasl_tag, None
        if response == b"*":
            self._bad(tag, "Authentication cancelled.")
            return
        try:
            text = self._plain(response)
        except Bad as exc:
            self._bad(tag, str(exc))
        except No as exc:
            self._send(tag + b" NO " + str(exc).encode() + b"\r\n")
        else:
            self._send(tag + b" OK " + text + b"\r\n")

    def _plain(self, response: bytes) -> bytes:
        creds = sasl_plain(response)
        if creds is None:
            raise Bad("Invalid SASL PLAIN response.")
        return self._log_in(creds.login, creds.password)

    # -- authenticated --------------------------------------------------------

    def _mailbox(self, arg) -> Mailbox:
        try:
            return self.store.mailbox(self.user, mailbox_name(arg))
        except UnknownMailbox:
            raise No("[TRYCREATE] Mailbox does not exist.") from None

    def _c_select(self, tag, args, uid, readonly=False):
        self._arity(args, 1)
        self._deselect()
        box = self._mailbox(args[0])
        messages, uidnext, recent = box.open(claim_recent=not readonly)
        self.mailbox, self.readonly, self.view = box, readonly, messages
        self._recent = recent
        self._known_flags = {m.uid: m.flags for m in messages}
        self._max_uid = uidnext - 1
        keywords = {f for m in messages for f in m.flags if not f.startswith("\\")}
        self._untagged(b"FLAGS " + flags_list(set(SYSTEM_FLAGS) | keywords))
        permanent = b"()" if readonly else flags_list(set(SYSTEM_FLAGS) | keywords | {"\\*"})
        self._untagged(b"OK [PERMANENTFLAGS " + permanent + b"] Flags permitted.")
        self._untagged(b"%d EXISTS" % len(messages))
        self._untagged(b"%d RECENT" % len(recent))
        unseen = next((i for i, m in enumerate(messages, 1) if SEEN not in m.flags), None)
        if unseen is not None:
            self._untagged(b"OK [UNSEEN %d] First unseen." % unseen)
        self._untagged(b"OK [UIDVALIDITY %d] UIDs valid." % box.uidvalidity)
        self._untagged(b"OK [UIDNEXT %d] Predicted next UID." % uidnext)
        return b"[READ-ONLY] EXAMINE completed" if readonly else b"[READ-WRITE] SELECT completed"

    def _c_examine(self, tag, args, uid):
        return self._c_select(tag, args, uid, readonly=True)

    def _c_create(self, tag, args, uid):
        self._arity(args, 1)
        name = mailbox_name(args[0]).rstrip("/")
        if name in self.store.mailbox_names(self.user):
            raise No("[ALREADYEXISTS] Mailbox exists.")
        try:
            self.store.add_mailbox(self.user, name)
        except ValueError:
            raise No("[CANNOT] Invalid mailbox name.") from None
        return b"CREATE completed"

    def _c_delete(self, tag, args, uid):
        raise No("[CANNOT] DELETE is not supported by the demo server.")

    def _c_rename(self, tag, args, uid):
        raise No("[CANNOT] RENAME is not supported by the demo server.")

    def _c_subscribe(self, tag, args, uid, on=True):
        self._arity(args, 1)
        box = self._mailbox(args[0])
        self.store.subscribe(self.user, box.name, on)
        return b"SUBSCRIBE completed" if on else b"UNSUBSCRIBE completed"

    def _c_unsubscribe(self, tag, args, uid):
        return self._c_subscribe(tag, args, uid, on=False)

    def _c_list(self, tag, args, uid, command=b"LIST"):
        self._arity(args, 2)
        reference = astring(args[0]).decode("utf-8", "replace")
        pattern = astring(args[1]).decode("utf-8", "replace")
        if not pattern:
            self._untagged(command + b' (\\Noselect) "/" ""')
            return command + b" completed"
        names = self.store.mailbox_names(self.user)
        shown = names if command == b"LIST" else [
            n for n in names if n in self.store.subscriptions(self.user)]
        translated = "".join(".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c)
                             for c in reference + pattern) + r"\Z"
        regex = re.compile(translated)
        inbox = re.compile(translated, re.IGNORECASE)     # INBOX is case-insensitive
        for name in shown:
            if not (regex.match(name) or name == "INBOX" and inbox.match(name)):
                continue
            children = any(other.startswith(name + "/") for other in names)
            attr = b"\\HasChildren" if children else b"\\HasNoChildren"
            self._untagged(command + b" (" + attr + b') "/" ' + string(name.encode()))
        return command + b" completed"

    def _c_lsub(self, tag, args, uid):
        return self._c_list(tag, args, uid, command=b"LSUB")

    def _c_status(self, tag, args, uid):
        self._arity(args, 2)
        if not isinstance(args[1], list) or not args[1]:
            raise Bad("STATUS needs a list of items")
        wanted = [atom(a, "a status item").upper_str() for a in args[1]]
        if any(w not in _STATUS_ITEMS for w in wanted):
            raise Bad("unknown STATUS item")
        box = self._mailbox(args[0])
        counts = box.status()
        body = b" ".join(b"%s %d" % (w.encode(), counts[w]) for w in wanted)
        self._untagged(b"STATUS " + string(box.name.encode()) + b" (" + body + b")")
        return b"STATUS completed"

    def _c_append(self, tag, args, uid):
        self._arity(args, 2, 4)
        message = args[-1]
        if isinstance(message, (Atom, list)):
            raise Bad("APPEND needs the message as a literal")
        flags, date = None, None
        for extra in args[1:-1]:
            if isinstance(extra, list) and flags is None and date is None:
                flags = flag_list(extra)
            elif not isinstance(extra, list) and date is None:
                date = parse_datetime(extra)
            else:
                raise Bad("invalid APPEND arguments")
        flags = flags or []
        box = self._mailbox(args[0])
        if len(message) > self.limits.message_size:
            raise No("[TOOBIG] Message too large.")
        added = box.append(bytes(message), flags, date)
        return b"[APPENDUID %d %d] APPEND completed" % (box.uidvalidity, added.uid)

    # -- selected -------------------------------------------------------------

    def _c_check(self, tag, args, uid):
        self._arity(args, 0)
        return b"CHECK completed"

    def _c_close(self, tag, args, uid):
        self._arity(args, 0)
        if not self.readonly:
            self.mailbox.expunge()
        self._deselect()
        return b"CLOSE completed"

    def _c_unselect(self, tag, args, uid):
        self._arity(args, 0)
        self._deselect()
        return b"UNSELECT completed"

    def _writable(self) -> None:
        if self.readonly:
            raise No("[READ-ONLY] Mailbox is read-only.")

    def _c_expunge(self, tag, args, uid):
        self._arity(args, 1 if uid else 0)
        self._writable()
        uids = None
        if uid:
            uids = [m.uid for _, m in self._messages(args[0], uid=True)]
        self.mailbox.expunge(uids)
        return b"EXPUNGE completed"

    def _messages(self, arg, *, uid: bool) -> list[tuple[int, Message]]:
        """(sequence number, message) of a sequence set or UID set, in order."""
        seqset = SequenceSet.parse(arg)
        view = self.view
        if uid:
            largest = view[-1].uid if view else 0
            return [(i, m) for i, m in enumerate(view, 1) if seqset.contains(m.uid, largest)]
        bounds = seqset.bounds(len(view))
        if any(lo < 1 or hi > len(view) for lo, hi in bounds):
            raise Bad("Invalid message sequence number.")
        seqs = sorted({s for lo, hi in bounds for s in range(lo, hi + 1)})
        return [(s, view[s - 1]) for s in seqs]

    def _flags(self, m: Message) -> bytes:
        return flags_list(m.flags | {RECENT} if m.uid in self._recent else m.flags)

    def _c_fetch(self, tag, args, uid):
        self._arity(args, 2)
        items = _imapfetch.parse_items(args[1])
        selected = self._messages(args[0], uid=uid)
        sets_seen = not self.readonly and any(item.sets_seen for item in items)
        report_flags = any(item.name == "FLAGS" for item in items)
        for seq, m in selected:
            out = [b"UID %d" % m.uid] if uid and not any(i.name == "UID" for i in items) else []
            seen_now = sets_seen and SEEN not in m.flags
            if seen_now:
                self.mailbox.update_flags(m, "add", [SEEN])
            flags = self._flags(m)
            out.extend(item.render(m, flags) for item in items)
            if seen_now and not report_flags:
                out.append(b"FLAGS " + flags)
            if seen_now or report_flags:
                self._known_flags[m.uid] = m.flags
            self._send(b"* %d FETCH (%s)\r\n" % (seq, b" ".join(out)))
        return b"FETCH completed"

    def _c_store(self, tag, args, uid):
        if len(args) < 3:
            raise Bad("STORE needs a set, an item and flags")
        item = atom(args[1], "a STORE item").upper_str()
        silent = item.endswith(".SILENT")
        mode = _STORE_MODES.get(item.removesuffix(".SILENT"))
        if mode is None:
            raise Bad("unknown STORE item")
        flags = flag_list(args[2] if len(args) == 3 else args[2:])
        self._writable()
        for seq, m in self._messages(args[0], uid=uid):
            self._known_flags[m.uid] = self.mailbox.update_flags(m, mode, flags)
            if not silent:
                uid_item = b"UID %d " % m.uid if uid else b""
                self._untagged(b"%d FETCH (%sFLAGS %s)" % (seq, uid_item, self._flags(m)))
        return b"STORE completed"

    def _c_copy(self, tag, args, uid):
        self._arity(args, 2)
        selected = self._messages(args[0], uid=uid)
        target = self._mailbox(args[1])
        copies = [target.append(m.data, m.flags, m.internal_date) for _, m in selected]
        if not copies:
            return b"COPY completed"
        return b"[COPYUID %d %s %s] COPY completed" % (
            target.uidvalidity, _uid_set([m.uid for _, m in selected]),
            _uid_set([c.uid for c in copies]))

    def _c_search(self, tag, args, uid):
        if args and isinstance(args[0], Atom) and args[0].upper_str() == "CHARSET":
            if len(args) < 2 or astring(args[1]).upper() not in _imapsearch.CHARSETS:
                raise No("[BADCHARSET (US-ASCII UTF-8)] Unsupported charset.")
            args = args[2:]
        match = _imapsearch.compile_keys(args)
        view = self.view
        ctx = _imapsearch.Context(len(view), view[-1].uid if view else 0,
                                  frozenset(self._recent))
        hits = [m.uid if uid else seq for seq, m in enumerate(view, 1) if match(m, seq, ctx)]
        self._untagged(b"SEARCH" + b"".join(b" %d" % h for h in hits))
        return b"SEARCH completed"

    # -- keeping the view current ---------------------------------------------

    def _sync(self, *, expunge: bool) -> None:
        box = self.mailbox
        if box is None:
            return
        current = box.snapshot()
        if expunge:
            present = {m.uid for m in current}
            if len(present) != len(self.view) or any(m.uid not in present for m in self.view):
                kept = []
                for m in self.view:
                    if m.uid in present:
                        kept.append(m)
                    else:
                        self._untagged(b"%d EXPUNGE" % (len(kept) + 1))
                        self._known_flags.pop(m.uid, None)
                        self._recent.discard(m.uid)
                self.view = kept
        new = [m for m in current if m.uid > self._max_uid]
        if new:
            uids = [m.uid for m in new]
            self._recent |= box.claim_recent(uids) if not self.readonly else \
                box.recent_uids().intersection(uids)
            self.view.extend(new)
            self._max_uid = uids[-1]
            for m in new:
                self._known_flags[m.uid] = m.flags
            self._untagged(b"%d EXISTS" % len(self.view))
            self._untagged(b"%d RECENT" % len(self._recent))
        for seq, m in enumerate(self.view, 1):
            if self._known_flags.get(m.uid, m.flags) != m.flags:
                self._known_flags[m.uid] = m.flags
                self._untagged(b"%d FETCH (FLAGS %s)" % (seq, self._flags(m)))

    _COMMANDS: ClassVar[dict[str, tuple[Callable, int]]] = {
        "CAPABILITY": (_c_capability, ANY),
        "NOOP": (_c_noop, ANY),
        "LOGOUT": (_c_logout, ANY),
        "LOGIN": (_c_login, NOT_AUTHENTICATED),
        "AUTHENTICATE": (_c_authenticate, NOT_AUTHENTICATED),
        "SELECT": (_c_select, LOGGED_IN),
        "EXAMINE": (_c_examine, LOGGED_IN),
        "CREATE": (_c_create, LOGGED_IN),
        "DELETE": (_c_delete, LOGGED_IN),
        "RENAME": (_c_rename, LOGGED_IN),
        "SUBSCRIBE": (_c_subscribe, LOGGED_IN),
        "UNSUBSCRIBE": (_c_unsubscribe, LOGGED_IN),
        "LIST": (_c_list, LOGGED_IN),
        "LSUB": (_c_lsub, LOGGED_IN),
        "STATUS": (_c_status, LOGGED_IN),
        "APPEND": (_c_append, LOGGED_IN),
        "CHECK": (_c_check, SELECTED),
        "CLOSE": (_c_close, SELECTED),
        "UNSELECT": (_c_unselect, SELECTED),
        "EXPUNGE": (_c_expunge, SELECTED),
        "SEARCH": (_c_search, SELECTED),
        "FETCH": (_c_fetch, SELECTED),
        "STORE": (_c_store, SELECTED),
        "COPY": (_c_copy, SELECTED),
    }


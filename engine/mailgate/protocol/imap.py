"""IMAP: the client-facing pre-auth machine and the backend login.

The machine is nginx's src/mail/ngx_mail_imap_handler.c (ngx_mail_imap_auth_state() and
its commands) with the capability lines of ngx_mail_imap_merge_srv_conf() in
src/mail/ngx_mail_imap_module.c; the backend login is ngx_mail_proxy_imap_handler() in
src/mail/ngx_mail_proxy_module.c (docs/nginx-behaviour.md#imap).

Every IMAP wire string of the proxy lives here.
"""

from __future__ import annotations

from functools import lru_cache

from mailgate.protocol import sasl
from mailgate.protocol._backend import (
    _AGAIN,
    _BAD,
    _OK,
    SASL_COMMAND,
    SASL_ERROR,
    SASL_RESPONSE,
    BackendLogin,
)
from mailgate.protocol._codes import (
    CONFIG_ENCODING,
    IMAP_AUTHENTICATE,
    IMAP_CAPABILITY,
    IMAP_ID,
    IMAP_LOGIN,
    IMAP_LOGOUT,
    IMAP_STARTTLS,
    INVALID,
    LITERAL,
    OK,
)
from mailgate.protocol._server import DONE, START, ServerMachine

GREETING = b"* OK IMAP4 ready\r\n"
OK_COMPLETED = b"OK completed\r\n"
LITERAL_CONTINUE = b"+ OK\r\n"
BYE = b"* BYE\r\n"
BAD_COMMAND = b"BAD invalid command\r\n"
UNTAGGED = b"* "
INTERNAL_ERROR = b"* BAD internal server error\r\n"
CERT_ERROR = b"* BYE SSL certificate error\r\n"
NO_CERT = b"* BYE No required SSL certificate\r\n"

# -- RFC 2971 ID ---------------------------------------------------------------------

UNTAGGED_ID = b"* ID "
# RFC 2971 section 3.3: a field name of at most 30 octets, a value of at most 1024, at
# most 30 pairs
ID_MAX_FIELD = 30
ID_MAX_VALUE = 1024
ID_MAX_PAIRS = 30
# the tag of the proxy's own ID command to the backend (never seen by the client)
BACKEND_ID_TAG = b"mailgate-id "
# the fields Dovecot takes from a proxy in login_trusted_networks (its imap-login's
# ID handling): a client must not set them itself
_TRUSTED_FIELDS = (b"x-originating-", b"x-connected-", b"x-forward-", b"x-proxy-ttl",
                   b"x-session-id", b"x-session-ext-id")

# RFC 3501's QUOTED-CHAR is a TEXT-CHAR: never CR, LF (nor NUL, nowhere in IMAP); a
# line from the reader has none, and a list sent on to a backend must not either
_NOT_QUOTABLE = b"\0\r\n"

IdFields = tuple[tuple[bytes, "bytes | None"], ...]


def parse_id(raw: bytes) -> IdFields | None:
    """RFC 2971's ``id_params_list``: ``NIL`` or ``(`` string SP nstring ... ``)``, the
    strings quoted; the pairs, or None when malformed or beyond the RFC's limits
    (literals are not taken: a parameter list is one line)."""
    if raw.upper() == b"NIL":
        return ()
    if len(raw) < 2 or raw[0] != 0x28 or raw[-1] != 0x29:
        return None
    items: list[bytes | None] = []
    p, end = 1, len(raw) - 1
    while p < end:
        if items:
            if raw[p] != 0x20:
                return None
            p += 1
        if raw[p:p + 1] == b'"':
            value = bytearray()
            p += 1
            while p < end and raw[p] != 0x22:
                if raw[p] in _NOT_QUOTABLE:
                    return None
                if raw[p] == 0x5C:
                    p += 1
                    if p >= end or raw[p] not in b'"\\':
                        return None
                value.append(raw[p])
                p += 1
            if p >= end:
                return None
            p += 1
            items.append(bytes(value))
        elif raw[p:p + 3].upper() == b"NIL" and len(items) % 2:
            items.append(None)
            p += 3
        else:
            return None
        if len(items) > 2 * ID_MAX_PAIRS:
            return None
    if len(items) % 2:
        return None
    pairs = tuple(zip(items[::2], items[1::2]))
    if any(len(name) > ID_MAX_FIELD or (value is not None and len(value) > ID_MAX_VALUE)
           for name, value in pairs):
        return None
    return pairs


def _quoted(value: bytes | None) -> bytes:
    if value is None:
        return b"NIL"
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def format_id(fields: IdFields) -> bytes:
    """The ``id_params_list`` of ``fields`` (``NIL`` when there are none)."""
    if not fields:
        return b"NIL"
    return b"(" + b" ".join(_quoted(n) + b" " + _quoted(v) for n, v in fields) + b")"


@lru_cache(maxsize=256)
def _server_id(fields: tuple[tuple[str, str], ...]) -> bytes:
    encoded = tuple((n.encode(*CONFIG_ENCODING), v.encode(*CONFIG_ENCODING)) for n, v in fields)
    return UNTAGGED_ID + format_id(encoded) + b"\r\n"


def backend_id(client: IdFields, endpoints) -> bytes:
    """The proxy's ID command to the backend: the client's own fields (but those a
    backend trusts from its proxy) and where the client connected from and to, under
    Dovecot's names."""
    ours = ((b"x-originating-ip", endpoints.client_ip.encode()),
            (b"x-originating-port", b"%d" % endpoints.client_port),
            (b"x-connected-ip", endpoints.server_ip.encode()),
            (b"x-connected-port", b"%d" % endpoints.server_port))
    kept = tuple(f for f in client if not f[0].lower().startswith(_TRUSTED_FIELDS))
    fields = kept[:ID_MAX_PAIRS - len(ours)] + ours
    return BACKEND_ID_TAG + b"ID " + format_id(fields) + b"\r\n"


@lru_cache(maxsize=256)
def _capabilities(capabilities: tuple[str, ...], methods: frozenset[str]
                  ) -> tuple[bytes, bytes, bytes]:
    caps = [c.encode(*CONFIG_ENCODING) for c in capabilities]
    auth = [b"AUTH=" + m.name for m in sasl.offered("imap", methods)]
    base = b" ".join([b"* CAPABILITY"] + caps + auth)
    # under "starttls only" AUTH= items are hidden, configured ones included
    plain_caps = [c for c in caps if not c[:5].upper() == b"AUTH="]
    only = b" ".join([b"* CAPABILITY"] + plain_caps + [b"STARTTLS LOGINDISABLED"])
    return base + b"\r\n", base + b" STARTTLS\r\n", only + b"\r\n"


def capability_lines(config) -> tuple[bytes, bytes, bytes]:
    """The CAPABILITY lines (base, ``starttls on``, ``starttls only``) of a server."""
    return _capabilities(tuple(config.imap_capabilities), frozenset(config.imap_auth))


class ImapServer(ServerMachine):
    """Client-facing IMAP before authentication (``ngx_mail_imap_handler.c``)."""

    protocol = "imap"
    auth_directive = "imap_auth"
    reader_name = "ImapReader"
    sasl_prompt = b"+ "
    secret_commands = frozenset({b"LOGIN", b"AUTHENTICATE"})
    secret_codes = frozenset({IMAP_LOGIN, IMAP_AUTHENTICATE})
    auth_command = IMAP_AUTHENTICATE
    INTERNAL_ERROR = INTERNAL_ERROR
    CERT_ERROR = CERT_ERROR
    NO_CERT = NO_CERT
    # what the client's ID command said (set when it sends one)
    client_id: IdFields = ()
    client_id_text: bytes | None = None

    def _buffer_size(self) -> int:
        return self.config.imap_client_buffer

    def _request_extra(self) -> dict:
        if self.client_id_text is None or not self.config.auth_http_pass_imap_id:
            return {}
        return {"imap_id": self.client_id_text}

    @classmethod
    def fixed_greeting(cls, config) -> bytes:
        return GREETING

    def _greeting(self) -> bytes:
        return GREETING

    @property
    def tag(self) -> bytes:
        """The tag of the command being answered, with its trailing space."""
        return self.reader.tag

    def _handle(self, rc: int) -> None:
        reader = self.reader
        tagged = True
        text = b""
        self._reply = OK_COMPLETED
        if rc == OK:
            if self.mail_state == START:
                command = reader.command
                if command == IMAP_LOGIN:
                    rc = self._login()
                elif command == IMAP_AUTHENTICATE:
                    rc = self._authenticate()
                    tagged = rc != OK
                elif command == IMAP_CAPABILITY:
                    text = self._capability()
                elif command == IMAP_LOGOUT:
                    self.quit = True
                    text = BYE
                elif command == IMAP_ID:
                    rc, text = self._id()
                elif command == IMAP_STARTTLS:
                    rc = self._starttls_command()
            else:
                # an error in a step that is not the last goes untagged: nginx's
                # ngx_imap_auth_login_username state (ngx_mail_imap_auth_state())
                tagged = self.mail_state.last
                rc = self._sasl_continue()
        elif rc == LITERAL:
            tagged = False
            self._reply = LITERAL_CONTINUE

        if self._conclude(rc, BAD_COMMAND):
            return
        if rc == INVALID and reader.literal_rejected:
            self.quit = True

        if tagged:
            self._send(text + (reader.tag or UNTAGGED) + self._reply)
        else:
            self._send(self._reply)

        if rc != LITERAL and not reader.in_progress:
            self.buffer.reset_if_drained()
            reader.tag = b""

    def _login(self) -> int:
        args = self.reader.args
        if self._starttls_only() or len(args) != 2 or not args[0]:
            return INVALID
        self.auth_method = sasl.PLAIN.auth_method
        self.login = args[0]
        self.password = args[1]
        return DONE

    def _authenticate(self) -> int:
        if self._starttls_only():
            return INVALID
        return self._sasl_begin(self.reader.args)

    def _id(self) -> tuple[int, bytes]:
        """RFC 2971 ID: the client's fields are kept (for auth_http and the backend),
        the server's come from ``imap_id``."""
        args = self.reader.args
        fields = parse_id(args[0]) if len(args) == 1 else None
        if fields is None:
            # counted as a line the parser refused (RFC 2971 lists are mailgate's to
            # parse; nginx's parser refuses an ID command outright)
            self._count_invalid()
            if args and args[0].endswith(b"+}"):
                # a non-synchronizing literal follows: its bytes must not be read as
                # commands (as nginx closes after a rejected line announcing one)
                self.quit = True
            return INVALID, b""
        self.client_id = fields
        self.client_id_text = args[0]
        return OK, _server_id(self.config.imap_id)

    def _capability(self) -> bytes:
        base, starttls_on, starttls_only = capability_lines(self.config)
        if not self.tls:
            if self.config.starttls == "on":
                return starttls_on
            if self.config.starttls == "only":
                return starttls_only
        return base

    def _starttls_command(self) -> int:
        if not self._starttls_allowed():
            return INVALID
        self._starttls = True
        return OK

    def _command_word_start(self, line: bytes) -> int | None:
        space = line.find(b" ")
        if space < 0:
            return None
        while space < len(line) and line[space] == 0x20:
            space += 1
        return space

    def _failure_line(self, result) -> bytes:
        return (self.reader.tag or UNTAGGED) + b"NO " + result.message + b"\r\n"

    def _after_auth_wait(self) -> None:
        # nginx keeps a stale tag here and answers the next tagless error with its
        # bytes; mailgate answers "* BAD invalid command" (docs/differences.md#imap)
        self.reader.tag = b""

    def _make_backend(self, endpoints) -> "ImapBackendLogin":
        # the LOGIN/AUTHENTICATE tag is still set: DONE returns before it is reset
        id_line = None
        if self.config.proxy_imap_id and endpoints is not None:
            id_line = backend_id(self.client_id, endpoints)
        return ImapBackendLogin(self.config, tag=self.reader.tag, login=self.login,
                                password=self.backend_password,
                                method=sasl.by_auth_method(self.auth_method),
                                id_line=id_line, implementation=self.impl.name)


_SASL_STATES = (SASL_COMMAND, SASL_RESPONSE, SASL_ERROR)


class ImapBackendLogin(BackendLogin):
    """Log in to an IMAP backend with the client's tag and literals
    (ngx_mail_proxy_imap_handler() in src/mail/ngx_mail_proxy_module.c), or with
    AUTHENTICATE and the client's mechanism when the method replays it (OAuth 2.0)."""

    protocol = "imap"

    INTERNAL_ERROR = INTERNAL_ERROR

    def __init__(self, config, *, tag: bytes, login: bytes, password: bytes,
                 method: sasl.Method | None = None, id_line: bytes | None = None,
                 implementation: str | None = None) -> None:
        super().__init__(config, implementation=implementation)
        self.tag = tag
        self._login = login
        self._password = password
        # proxy_imap_id: the proxy's ID command, sent before the login
        self._id_line = id_line
        if method is not None and method.replay == sasl.SASL_REPLAY:
            self.mechanism = method

    def _check(self, reply: bytes) -> tuple[int, int]:
        state = self.state
        if state == "start":
            return (_OK if reply.startswith(b"* OK") else _BAD), 0
        if state in ("login", "user"):
            return (_OK if reply.startswith(b"+") else _BAD), 0
        if state in _SASL_STATES:
            return self._check_sasl(reply, b"+", self._final(reply))
        if state == "id":
            # any tagged answer will do: a backend without ID still takes the login
            rc, _ = self._final(reply, BACKEND_ID_TAG)
            return (_AGAIN if rc == _AGAIN else _OK), 0
        return self._final(reply)

    def _final(self, reply: bytes, tag: bytes | None = None) -> tuple[int, int]:
        """The tagged reply ending the login (or ``tag``'s command); one untagged line
        (e.g. CAPABILITY) may come first."""
        p = 0
        if reply.startswith(b"* "):
            end = reply.find(b"\r\n", 2)
            p = end + 2
            if len(reply) - p < 4:
                return _AGAIN, 0
        tag = tag or self.tag
        if reply.startswith(tag, p):
            p += len(tag)
            if reply.startswith(b"OK", p):
                return _OK, 0
        return _BAD, p

    def _step(self) -> None:
        state = self.state
        if state == "start":
            if self.starttls:
                self._send_line(b"%sSTARTTLS\r\n" % self.tag, "starttls",
                                "sending STARTTLS command to upstream")
            else:
                self._after_tls()
        elif state == "starttls":
            self._start_tls()
        elif state == "id":
            self._login_command()
        elif state == SASL_COMMAND:
            self._send_sasl_response()
        elif state == "login":
            self._send_line(b"%s {%d}\r\n" % (self._login, len(self._password)),
                            "user", "sending user name to upstream")
        elif state == "user":
            self._send_line(self._password + b"\r\n", "passwd",
                            "sending password to upstream")
        else:
            self._finish()

    def _after_tls(self) -> None:
        # nothing of the capabilities is used, so none is asked again over TLS
        # (RFC 3501 section 6.2.1 only forbids trusting those from before); the ID
        # (proxy_imap_id) goes first, over TLS when there is TLS
        if self._id_line is not None:
            self._send_line(self._id_line, "id", "sending ID to upstream")
        else:
            self._login_command()

    def _login_command(self) -> None:
        if self.mechanism is not None:
            self._send_line(b"%sAUTHENTICATE %s\r\n" % (self.tag, self.mechanism.name),
                            SASL_COMMAND, "sending AUTHENTICATE command to upstream")
        else:
            self._send_line(b"%sLOGIN {%d}\r\n" % (self.tag, len(self._login)),
                            "login", "sending LOGIN command to upstream")

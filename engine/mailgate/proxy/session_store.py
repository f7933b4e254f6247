"""``ssl_session_store``: TLS sessions shared between machines through Redis.

Several mailgate nodes behind a TCP balancer (docs/deployment.md) each see a
client's next connection with even odds; a TLS 1.2 session ID (or a TLS 1.3
session with tickets off) resumes only where its session is known.  With a store,
a handshake whose session the local caches (builtin, shared zone) miss pauses in
OpenSSL's ClientHello callback (``tls.SessionLookup``) while the event loop asks
Redis, then goes on with what came back, or with a full handshake when nothing
came within ``timeout``.  New sessions are written after the handshake, without
waiting, with the ``ssl_session_timeout`` TTL.

A reader of Redis learns nothing usable: the entry's name is an HMAC of the session
ID, its value the session's DER sealed with AES-256-GCM (the name is the associated
data, so a value cannot be moved to another name).  Both keys come from the
configured key material through HKDF-SHA256 (RFC 5869).

Redis down or slow: every lookup is a miss and every write is dropped; a ``[warn]``
at most once a minute per store; after a failure the store is not asked for
``RETRY_AFTER`` seconds, so that a dead Redis costs no handshake a wait.

One ``SessionStores`` per worker (``MailProxy``) keeps one connection pool per
Redis address, shared by the servers that name it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Iterable

from mailgate.config import ConfigError, SessionStoreSetting

__all__ = ["RETRY_AFTER", "WARN_EVERY", "SessionStore", "SessionStores", "check_packages",
           "entry_name", "seal", "store_keys", "unseal"]

WARN_EVERY = 60.0  # seconds between two warnings of one store
RETRY_AFTER = 1.0  # seconds a store is left alone after a failure
_VERSION = b"\x01"
_NONCE = 12
_INFO = b"mailgate ssl_session_store v1"

Log = Callable[[str, str], None]


def _packages():
    """The client and cipher modules, imported on first use: only a configuration with
    a store needs them (``pip install 'mailgate[redis]'``)."""
    try:
        import redis.asyncio as redis_asyncio
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:
        raise ConfigError('"ssl_session_store" needs the Python packages redis and cryptography '
                          "(pip install 'mailgate[redis]'): %s" % exc) from None
    return redis_asyncio, AESGCM, Retry, NoBackoff


def check_packages(contexts) -> None:
    """ConfigError when a context of ``contexts`` (``build_contexts()``) has a store and
    the packages it needs are missing: found by ``mailgate -t`` and by the master before
    any worker starts, not by each worker."""
    if any(context is not None and context.session_store is not None for context in contexts):
        _packages()


def store_keys(secret: bytes) -> tuple[bytes, bytes]:
    """(AES-256-GCM key, HMAC-SHA256 key) derived from the key material with HKDF."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    keys = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_INFO).derive(secret)
    return keys[:32], keys[32:]


def entry_name(prefix: str, mac_key: bytes, session_id: bytes) -> bytes:
    """The Redis key of a session: the prefix and an HMAC of its ID, in hex."""
    return prefix.encode() + hmac.new(mac_key, session_id, hashlib.sha256).hexdigest().encode()


def seal(aead, name: bytes, der: bytes) -> bytes:
    """The stored value: version, nonce, AES-GCM ciphertext and tag over ``der``."""
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + aead.encrypt(nonce, der, name)


def unseal(aead, name: bytes, value: bytes) -> bytes | None:
    """The DER in a stored value, None when it was not sealed under this key and name."""
    from cryptography.exceptions import InvalidTag

    if len(value) <= 1 + _NONCE or value[:1] != _VERSION:
        return None
    try:
        return aead.decrypt(value[1:1 + _NONCE], value[1 + _NONCE:], name)
    except InvalidTag:
        return None


class SessionStore:
    """One server's view of a Redis store: its keys, its prefix and timeout, the shared
    client.  ``fetch()`` and ``store()`` never raise and never wait: the answer comes
    through a callback, the writes go on in tasks this object keeps."""

    def __init__(self, setting: SessionStoreSetting, secret: bytes, client,
                 clock: Callable[[], float] = time.monotonic):
        _, aesgcm, _, _ = _packages()
        aes_key, self._mac_key = store_keys(secret)
        self._aead = aesgcm(aes_key)
        self.setting = setting
        self._client = client
        self._clock = clock
        self._tasks: set[asyncio.Task] = set()
        self._retry_at = 0.0
        self._warned_at: float | None = None

    @property
    def available(self) -> bool:
        """False for ``RETRY_AFTER`` seconds after a failure."""
        return self._clock() >= self._retry_at

    def name(self, session_id: bytes) -> bytes:
        return entry_name(self.setting.prefix, self._mac_key, session_id)

    def fetch(self, session_id: bytes, log: Log, done: Callable[[bytes | None], None]) -> None:
        """Look ``session_id`` up; ``done(der or None)`` is called with the answer (at
        once when the store is resting after a failure)."""
        if not self.available:
            done(None)
            return

        def finished(task: asyncio.Task) -> None:
            self._tasks.discard(task)
            done(None if task.cancelled() else task.result())

        self._spawn(self._get(session_id, log), finished)

    def store(self, sessions: Iterable[tuple[bytes, bytes]], ttl: int, log: Log) -> None:
        """Write (session ID, DER) pairs with a lifetime of ``ttl`` seconds."""
        sessions = list(sessions)
        if sessions and self.available:
            self._spawn(self._set(sessions, ttl, log), self._tasks.discard)

    def _spawn(self, coroutine, finished) -> None:
        # the loop keeps only weak references to tasks: this set keeps them alive
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(finished)

    async def _get(self, session_id: bytes, log: Log) -> bytes | None:
        name = self.name(session_id)
        try:
            async with asyncio.timeout(self.setting.timeout):  # no task of its own, as wait_for's
                value = await self._client.get(name)
        except Exception as exc:  # whatever Redis or its client does: a full handshake
            self._failed(exc, log)
            return None
        if not isinstance(value, bytes):
            return None
        return unseal(self._aead, name, value)

    async def _set(self, sessions: list[tuple[bytes, bytes]], ttl: int, log: Log) -> None:
        try:
            async with asyncio.timeout(self.setting.timeout), \
                    self._client.pipeline(transaction=False) as pipe:
                for session_id, der in sessions:
                    name = self.name(session_id)
                    pipe.set(name, seal(self._aead, name, der), ex=max(ttl, 1))
                await pipe.execute()
        except Exception as exc:  # a session not shared costs a full handshake elsewhere
            self._failed(exc, log)

    def _failed(self, exc: BaseException, log: Log) -> None:
        now = self._clock()
        self._retry_at = now + RETRY_AFTER
        if self._warned_at is not None and now - self._warned_at < WARN_EVERY:
            return
        self._warned_at = now
        reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else (str(exc) or type(exc).__name__)
        log("warn", 'ssl_session_store "%s" failed (%s), sessions are not shared'
            % (self.setting.name, reason))

    async def close(self) -> None:
        """Wait briefly for the writes in progress, then drop the rest."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.setting.timeout)
        for task in list(self._tasks):
            task.cancel()


class SessionStores:
    """A worker's stores: one Redis client (a connection pool) per address, one
    ``SessionStore`` per (address, key material)."""

    def __init__(self) -> None:
        self._clients: dict[tuple, object] = {}
        self._stores: dict[tuple, SessionStore] = {}

    def get(self, setting: SessionStoreSetting, secret: bytes) -> SessionStore:
        """The store of ``setting`` with the keys of ``secret``."""
        store = self._stores.get((setting, secret))
        if store is None:
            redis_asyncio, _, retry, no_backoff = _packages()
            address = (setting.host, setting.port, setting.db, setting.username, setting.password)
            client = self._clients.get(address)
            if client is None:
                client = self._clients[address] = redis_asyncio.Redis(
                    host=setting.host, port=setting.port, db=setting.db,
                    username=setting.username, password=setting.password,
                    socket_timeout=setting.timeout, socket_connect_timeout=setting.timeout,
                    retry=retry(no_backoff(), 0), client_name="mailgate")
            store = self._stores[(setting, secret)] = SessionStore(setting, secret, client)
        return store

    async def close(self) -> None:
        """Finish the stores and close the connection pools."""
        for store in self._stores.values():
            await store.close()
        for client in self._clients.values():
            await client.aclose()
        self._stores = {}
        self._clients = {}

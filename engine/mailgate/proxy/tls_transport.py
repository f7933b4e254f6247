"""TLS on one of a session's sockets: between its asyncio transport and its ``TLSStream``.

Both sides of a session use it: the client side (implicit TLS, STARTTLS) and the
backend side (TLS to a backend).  It drives the handshake, hands what arrives to
the stream and writes what the stream has to send, encrypts what the session writes,
and closes as nginx closes a TLS connection (ngx_ssl_shutdown() in
src/event/ngx_event_openssl.c): close_notify, then up to ``TLS_SHUTDOWN_WAIT``
seconds for the peer's; or quietly after an error or a timeout, sending only what
OpenSSL itself left for the peer (an alert), as nginx's socket BIO would have.

The class using it keeps the state in its own slots (``transport``, ``tls``,
``_tls_closing``, ``_closed``, ``_peer_eof``) and provides:

* ``_tls_established() -> bool``: the handshake is done; True to read on at once;
* ``_tls_readable()``: plaintext may be waiting in ``tls``;
* ``_tls_peer_closed()``: the peer's close_notify, or the end of its input;
* ``log(level, message)`` and ``_close(quiet)``, and ``debugging``: whether its log
  takes debug lines (False unless the class says otherwise).
* for a server-side stream, ``runtime.session_store``: where a handshake paused for
  a session the local caches miss (``SessionLookup``) looks it up, and where the
  sessions it creates are stored (``ssl_session_store``, proxy/session_store.py).
"""

from __future__ import annotations

import functools

from mailgate.proxy.timers import Timed
from mailgate.tls import SessionLookup, TLSClosed, TLSError, TLSHandshakeError, TLSStream

__all__ = ["DISCARD", "TLS_SHUTDOWN_WAIT", "TLSTransport"]

TLS_SHUTDOWN_WAIT = 3.0  # nginx waits this long for the peer's close_notify
DISCARD = memoryview(bytearray(4096))  # where bytes nobody will read are received


class TLSTransport(Timed):
    """Mixin: the TLS of a socket whose session is the asyncio protocol."""

    __slots__ = ()

    transport: object
    tls: TLSStream | None
    _tls_closing: bool  # close_notify sent, waiting for the peer's
    _closed: bool
    _peer_eof: bool
    bytes_sent: int  # to the peer on its connection, TLS records included
    debugging = False

    def _start_tls(self, stream: TLSStream, rest: bytes = b"") -> None:
        """TLS on from now: ``rest`` is what arrived before, already part of it.  A
        client-side stream sends its ClientHello at once."""
        self.tls = stream
        if rest:
            stream.feed(rest)
        if rest or not stream.context.server_side:
            self._tls_input()

    def _tls_input(self, received: int = 0) -> None:
        """Go on with what TLS holds, after the ``received`` bytes in ``tls.input``."""
        tls = self.tls
        try:
            if not tls.handshake_done:
                try:
                    done = tls.do_handshake(received)
                except SessionLookup as lookup:
                    self.runtime.session_store.fetch(lookup.session_id, self.log,
                                                     functools.partial(self._session_found, tls))
                    return
                if self.debugging:  # ngx_ssl_handshake()'s line
                    self.log("debug", "SSL_do_handshake: %d" % (1 if done else -1))
                if not done:
                    self._flush_tls()
                    if self._peer_eof:
                        raise TLSHandshakeError("peer closed connection in SSL handshake", "info")
                    return
                # what the handshake left to send (TLS 1.3 tickets) goes out in one
                # write with what the session answers first
                read_on = self._tls_established()
                if not self._closed:
                    self._flush_tls()
                if tls.context.session_store is not None and self.tls is tls:
                    self.runtime.session_store.store(
                        tls.new_sessions(), tls.context.server.ssl_session_timeout, self.log)
                if not read_on:
                    return
            elif received:
                tls.feed_input(received)
            self._tls_readable()
        except TLSClosed:
            self._tls_peer_closed()
        except TLSHandshakeError as exc:
            self.log(exc.level, str(exc))
            self._flush_tls()
            self._close(quiet=True)
        except TLSError as exc:
            self.log(exc.level, str(exc))
            self._close(quiet=True)
        except MemoryError:  # the received bytes could not be buffered
            self._close(quiet=True)
            self.transport.abort()

    def _session_found(self, tls: TLSStream, der: bytes | None) -> None:
        """The store's answer to a paused handshake: go on with it (None: a full
        handshake), unless the session ended meanwhile."""
        if self.tls is tls and not self._closed:
            tls.resume_session(der)
            self._tls_input()

    def _flush_tls(self) -> None:
        tls = self.tls
        if tls is not None:
            data = tls.data_to_send()
            if data:
                self.bytes_sent += len(data)
                self.transport.write(data)

    def _write(self, data) -> None:
        """Bytes to the peer: encrypted once the handshake is done."""
        if self._closed or not data:
            return
        tls = self.tls
        if tls is not None and tls.handshake_done:
            try:
                records = tls.encrypt(data)
            except TLSError as exc:
                self.log(exc.level, str(exc))
                self._close(quiet=True)
                return
            self.bytes_sent += len(records)
            self.transport.write(records)
        else:
            self.bytes_sent += len(data)
            self.transport.write(bytes(data))

    def _close_transport(self, quiet: bool) -> None:
        """Close after what was written is sent; TLS gets close_notify unless ``quiet``
        or the peer has gone, and the peer's is awaited, so that the peer reads
        everything sent before it (closing with it unread would reset the connection)."""
        tls = self.tls
        if tls is not None:
            if quiet or self._peer_eof:
                tls.abort()
                self._flush_tls()
            elif self._tls_shutdown():
                self._tls_closing = True
                self.arm_timeout(TLS_SHUTDOWN_WAIT)
                self.transport.resume_reading()
                return
        self.transport.close()

    def _tls_shutdown(self) -> bool:
        """Send (or go on with) the close_notify exchange; True while waiting for the peer."""
        try:
            done = self.tls.shutdown()
        except TLSError:
            self.tls.abort()
            return False
        self._flush_tls()
        return not done

    def _tls_closing_input(self, nbytes: int) -> None:
        """Bytes that came while the peer's close_notify is awaited."""
        self.tls.feed_input(nbytes)
        if not self._tls_shutdown():
            self.cancel_timeout()
            self.transport.close()

    def _tls_shutdown_expired(self) -> bool:
        """The peer's close_notify did not come in time: True if that was the wait."""
        if self._tls_closing:
            self.transport.close()
            return True
        return False

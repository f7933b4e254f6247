"""Stopping to accept (a graceful stop, a reload's old worker) loses no connection that was
already accepted (issue 11, defect 3: on reload, 10 of ~8,500 logins ended in an EOF).

Two races, reproduced here by stopping the proxy from inside the protocol factory of the
first connection of a burst:

* asyncio's own loops set up each accepted connection in a task of its own; a stop that
  closed the server between those tasks made the later ones fail (the server's sockets
  were gone) and drop their connections.  The factory stops accepting at once, as a
  signal handler running between two of those tasks would.
* uvloop calls ``connection_made()`` a moment after accepting; a graceful stop that
  counted sessions from ``connection_made()`` found none and ended the worker first.
  The factory starts the graceful stop before ``connection_made()`` is scheduled, as a
  signal handler queued just before the accept does.

Every connection the proxy accepted must be served until the stop's timeout; the rest
stay queued in the kernel (the test holds the listening socket open), never reset.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time

import pytest
import uvloop

from mailgate import Config
from mailgate.log import LogFiles
from mailgate.proxy import mailproxy
from mailgate.proxy.mailproxy import MailProxy

CLIENTS = 20
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def _serve(loop_name: str, listening: socket.socket, stopped: threading.Event,
           left_open: list) -> None:
    config = Config.from_string(
        "mail { auth_http 127.0.0.1:9/auth; server_name mx.test;"
        " server { listen %s:%d; protocol imap; } }" % listening.getsockname())

    async def main() -> None:
        proxy = MailProxy(config, sockets=[listening], log_files=LogFiles())
        closing: list[asyncio.Task] = []
        stop_on_first[0] = lambda: closing.append(asyncio.get_running_loop().create_task(
            proxy.close(graceful=True, timeout=1.0)))
        await proxy.start()
        while not closing:
            await asyncio.sleep(0.05)
        await closing[0]
        # a graceful stop ends only when every session it accepted has ended
        left_open.extend(session for session in created if not session._closed)

    stop_on_first = [None]
    created = []
    original = mailproxy.Listener.session

    def session(listener):
        if stop_on_first[0] is not None:  # the first connection of the burst stops the proxy
            if loop_name == "asyncio":
                listener.proxy.stop_accepting()
            stop_on_first[0]()
            stop_on_first[0] = None
        created.append(original(listener))
        return created[-1]

    loop = LOOPS[loop_name]()
    mailproxy.Listener.session = session
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 20))
    finally:
        mailproxy.Listener.session = original
        loop.close()
        stopped.set()


def _served(client: socket.socket) -> str:
    """After the greeting, the session goes on until the graceful stop's timeout."""
    try:
        client.sendall(b"a CAPABILITY\r\n")
        reply = client.recv(100)
    except OSError as exc:
        return "greeted, then %r" % exc
    return "served" if reply.startswith(b"* CAPABILITY") else "greeted, then %r" % reply


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_connections_accepted_before_the_stop_are_served(loop_name):
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(128)
    keep = listening.dup()  # the kernel's queue outlives the proxy's socket
    stopped = threading.Event()
    left_open: list = []
    # the burst waits in the kernel's queue before the loop accepts any of it
    clients = [socket.create_connection(listening.getsockname(), timeout=5) for _ in range(CLIENTS)]
    thread = threading.Thread(target=_serve, args=(loop_name, listening, stopped, left_open), daemon=True)
    thread.start()
    outcomes = {}
    try:
        deadline = time.monotonic() + 2
        waiting = {client.fileno(): client for client in clients}
        while waiting and time.monotonic() < deadline:
            ready, _, _ = select.select(list(waiting), [], [], max(0, deadline - time.monotonic()))
            for fd in ready:
                client = waiting.pop(fd)
                try:
                    data = client.recv(100)
                except ConnectionResetError:
                    outcomes[fd] = "reset"
                else:
                    outcomes[fd] = _served(client) if data.startswith(b"* OK") else "eof %r" % data
        for fd in waiting:
            outcomes[fd] = "queued"  # never accepted: still in the kernel's queue
        assert stopped.wait(20)
    finally:
        for client in clients:
            client.close()
        keep.close()
        thread.join(10)
    assert not left_open
    assert "served" in outcomes.values(), outcomes
    assert set(outcomes.values()) <= {"served", "queued"}, outcomes

"""The read buffers the sessions of a thread share are the thread's own: event loops
read sockets with the GIL released, so loops in two threads must not share one."""

from __future__ import annotations

import threading

from mailgate.proxy import backend


def _in_thread(function):
    result = []
    thread = threading.Thread(target=lambda: result.append(function()))
    thread.start()
    thread.join()
    return result[0]


def test_the_relay_read_buffer_is_per_thread():
    here = backend._thread_relay_input.view
    assert backend._thread_relay_input.view is here  # shared on one thread
    there = _in_thread(lambda: backend._thread_relay_input.view)
    assert there.obj is not here.obj and len(there) == len(here) == backend.RELAY_READ_SIZE

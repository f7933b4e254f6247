"""README's embedding example runs as written (only its ports are changed to free ones)."""

from __future__ import annotations

import asyncio
import imaplib
import re
import socket
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    text = README.read_text()
    block = text.split("<!-- embedding-example -->", 1)[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_embedding_example_serves_imap():
    imap_port, pop3_port = _free_port(), _free_port()
    code = _example().replace("1143", str(imap_port)).replace("1110", str(pop3_port))
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)

    def fetch() -> bytes:
        with imaplib.IMAP4("127.0.0.1", imap_port, timeout=10) as imap:
            imap.login("alice", "wonderland")
            imap.select("INBOX")
            return imap.fetch("1", "(BODY.PEEK[])")[1][0][1]

    async def scenario() -> bytes:
        task = asyncio.create_task(namespace["main"]())
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", imap_port), timeout=1):
                    break
            except OSError:
                await asyncio.sleep(0.05)
        try:
            return await asyncio.to_thread(fetch)
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    assert asyncio.run(scenario()) == b"Subject: hello\r\n\r\nHi Alice!\r\n"

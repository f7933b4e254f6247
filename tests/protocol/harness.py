"""A transcript harness: drives a machine and keeps what it did."""

from __future__ import annotations

from mailgate.protocol.events import ArmTimer, Close, DisarmTimer, Log, Send, SendUpstream

from tests.protocol.factory import server_config


class Harness:
    """Drives a machine and keeps what it did, for transcript assertions."""

    def __init__(self, machine) -> None:
        self.m = machine
        self.actions: list = []
        self.closed = False
        self.timer: float | None = None

    def _take(self, actions: list) -> bytes:
        out = bytearray()
        for a in actions:
            self.actions.append(a)
            if isinstance(a, (Send, SendUpstream)):
                assert not self.closed, "sent after close"
                out += a.data
            elif isinstance(a, Close):
                self.closed = True
            elif isinstance(a, ArmTimer):
                self.timer = a.seconds
            elif isinstance(a, DisarmTimer):
                self.timer = None
        return bytes(out)

    def start(self) -> bytes:
        return self._take(self.m.start())

    def feed(self, data: bytes) -> bytes:
        return self._take(self.m.receive_data(data))

    def feed_bytewise(self, data: bytes) -> bytes:
        """Feed through get_buffer()/buffer_updated(), one byte at a time."""
        out = bytearray()
        for i in range(len(data)):
            view = self.m.get_buffer()
            assert len(view) > 0
            view[0] = data[i]
            out += self._take(self.m.buffer_updated(1))
        return bytes(out)

    def call(self, name: str, *args) -> bytes:
        return self._take(getattr(self.m, name)(*args))

    def last(self, kind):
        for a in reversed(self.actions):
            if isinstance(a, kind):
                return a
        return None

    def all(self, kind) -> list:
        return [a for a in self.actions if isinstance(a, kind)]

    def logs(self, level: str | None = None) -> list[str]:
        return [a.message for a in self.actions
                if isinstance(a, Log) and (level is None or a.level == level)]


__all__ = ["Harness", "server_config"]

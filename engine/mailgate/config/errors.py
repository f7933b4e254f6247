"""Configuration errors and the notices, warnings met while reading a configuration."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "ConfigMessage"]


def _located(message: str, file: str | None, line: int | None) -> str:
    if file is None:
        return message
    if line is None:
        return "%s in %s" % (message, file)
    return "%s in %s:%d" % (message, file, line)


class ConfigError(Exception):
    """A configuration that nginx would refuse.

    ``str()`` gives nginx's wording followed by `` in FILE:LINE`` when the place is known,
    which is the text of the one ``[emerg]`` line mailgate logs for it.
    """

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        return _located(self.message, self.file, self.line)


@dataclass(frozen=True)
class ConfigMessage:
    """A notice or warning that loading a configuration produced (nginx logs these too)."""

    level: str  # nginx's level: "error", "warn" or "notice"
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        return _located(self.message, self.file, self.line)

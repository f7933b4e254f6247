"""nginx configuration syntax: words, quotes, escapes, comments, ``;``, ``{`` and ``}``.

The lexer follows ``ngx_conf_read_token``: it is streaming, so a caller that handles
each statement as it arrives reports errors in the same order nginx does, and every
statement carries the file and the line on which nginx would report it (the line of
the ``;``, ``{`` or ``}`` that ended it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterator

from mailgate.config.errors import ConfigError

__all__ = ["End", "Statement", "tokenize", "ENCODING"]

# Configuration files are bytes to nginx; surrogateescape keeps any byte round-trippable.
ENCODING = ("utf-8", "surrogateescape")

_SPACE = " \t\r\n"
_UNESCAPE = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}


class End(enum.Enum):
    """What ended a statement."""

    SEMICOLON = ";"
    BLOCK_START = "{"
    BLOCK_END = "}"
    EOF = "end of file"


@dataclass(frozen=True)
class Statement:
    """A directive's words and what ended them (for BLOCK_END and EOF, words are empty)."""

    words: tuple[str, ...]
    end: End
    file: str
    line: int | None  # None for -g text, which nginx reports as "in command line"


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    out = []
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch == "\\" and i + 1 < n and raw[i + 1] in _UNESCAPE:
            out.append(_UNESCAPE[raw[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def tokenize(text: str, file: str, *, parameter: bool = False) -> Iterator[Statement]:
    """Yield the statements of ``text``; raise ConfigError where nginx would stop.

    ``parameter`` selects the rules for ``-g`` text, whose unterminated last directive
    is reported as the end of the parameter rather than of a file.
    """
    line = 1
    words: list[str] = []

    def statement(words: tuple[str, ...], end: End) -> Statement:
        return Statement(words, end, file, None if parameter else line)

    def error(message: str) -> ConfigError:
        return ConfigError(message, file, None if parameter else line)

    def unexpected_end() -> ConfigError:
        if parameter:
            return error('unexpected end of parameter, expecting ";"')
        return error('unexpected end of file, expecting ";" or "}"')

    pos, n = 0, len(text)
    while True:
        # Between words: skip blanks and comments, find the start of the next word.
        while pos < n:
            ch = text[pos]
            if ch in _SPACE:
                if ch == "\n":
                    line += 1
                pos += 1
            elif ch == "#":
                end = text.find("\n", pos)
                pos = n if end < 0 else end
            else:
                break
        if pos >= n:
            if words:
                raise unexpected_end()
            yield statement((), End.EOF)
            return
        ch = text[pos]
        if ch in ";{":
            if not words:
                raise error('unexpected "%s"' % ch)
            yield statement(tuple(words), End(ch))
            words = []
            pos += 1
            continue
        if ch == "}":
            if words:
                raise error('unexpected "}"')
            yield statement((), End.BLOCK_END)
            pos += 1
            continue

        # A word: quoted ("..." or '...') or bare, with backslash escapes in both.
        quote = ch if ch in "\"'" else None
        start = pos + 1 if quote else pos
        pos = start
        variable = False
        terminator = None
        while True:
            if pos >= n:
                raise unexpected_end()
            ch = text[pos]
            if ch == "\n":
                line += 1
            if ch == "\\":
                # The escaped byte is never a delimiter; a newline still counts as a line.
                if pos + 1 < n and text[pos + 1] == "\n":
                    line += 1
                pos += 2
                variable = False
                continue
            if quote:
                if ch == quote:
                    words.append(_unescape(text[start:pos]))
                    pos += 1
                    break
                pos += 1
                continue
            if ch == "{" and variable:
                pos += 1
                continue
            variable = ch == "$"
            if ch in _SPACE or ch in ";{":
                words.append(_unescape(text[start:pos]))
                if ch in ";{":
                    terminator = ch
                pos += 1
                break
            pos += 1
        if terminator is not None:
            yield statement(tuple(words), End(terminator))
            words = []
            continue
        if quote:
            # After a closing quote nginx needs a blank, ";" or "{".
            if pos < n:
                ch = text[pos]
                if ch in ";{":
                    yield statement(tuple(words), End(ch))
                    words = []
                    pos += 1
                elif ch not in _SPACE:
                    raise error('unexpected "%s"' % ch)

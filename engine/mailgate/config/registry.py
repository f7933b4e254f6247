"""The directive registry: every directive is declared once, with everything about it.

A module (one file per nginx module under ``mailgate.config.modules``) declares its
directives as ``Directive`` records: name, contexts, argument count, the handler that
parses and stores the value (usually one of the nginx slot types below), the default,
how server{} inherits from mail{}, and the documentation strings.  The loader, the
merge and the generated documentation table all read these records.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from mailgate.config.errors import ConfigError
from mailgate.config.values import atoi, parse_size, parse_time

if TYPE_CHECKING:
    from mailgate.config.loader import Loader

__all__ = [
    "Ctx",
    "Call",
    "Directive",
    "Level",
    "Merge",
    "UNSET",
    "bitmask_slot",
    "enum_slot",
    "flag_slot",
    "keyval_slot",
    "msec_slot",
    "num_slot",
    "sec_slot",
    "size_slot",
    "str_array_slot",
    "str_slot",
]


class Ctx(enum.Flag):
    """Where a directive may appear."""

    MAIN = enum.auto()
    EVENTS = enum.auto()
    MAIL = enum.auto()
    SERVER = enum.auto()
    ANY = MAIN | EVENTS | MAIL | SERVER


class Merge(enum.Enum):
    """How a server{} gets its value.

    INHERIT: the server's own value, else mail{}'s, else the default (array directives
    included: a server-level list replaces the mail-level list, never appends).
    SERVER_ONLY: only the server's own value counts (``protocol``, ``listen``).
    CUSTOM: the module's merge function computes it (session cache, server_name, ...).
    NONE: the directive configures something other than a server (main, events).
    """

    INHERIT = "inherit"
    SERVER_ONLY = "server only"
    CUSTOM = "custom"
    NONE = "none"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class Level:
    """The values set at one level (main, events, mail{} or one server{}), with locations."""

    def __init__(self, ctx: Ctx, file: str, line: int):
        self.ctx = ctx
        self.file = file
        self.line = line
        self.values: dict[str, Any] = {}
        self.locations: dict[str, tuple[str, int]] = {}
        # where TLS was asked for at this level (listen ... ssl, starttls, ssl on),
        # the place named by the "no ssl_certificate is defined for ..." errors
        self.tls_location: tuple[str, int] | None = None

    def get(self, name: str, default: Any = UNSET) -> Any:
        return self.values.get(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def freeze(self) -> None:
        """Turn the lists that array directives grew (``Call.extend``) into tuples."""
        for name, value in self.values.items():
            if type(value) is list:
                self.values[name] = tuple(value)


@dataclass
class Call:
    """One use of a directive, handed to its handler."""

    directive: "Directive"
    args: tuple[str, ...]
    file: str
    line: int | None
    level: Level
    loader: "Loader"

    @property
    def name(self) -> str:
        return self.directive.name

    def error(self, message: str) -> ConfigError:
        """An error located at this directive."""
        return ConfigError(message, self.file, self.line)

    def slot_error(self, text: str) -> ConfigError:
        """nginx's wording for a slot's complaint: ``"name" directive TEXT``."""
        return self.error('"%s" directive %s' % (self.name, text))

    def warn(self, message: str) -> None:
        self.loader.message("warn", message, self.file, self.line)

    def store(self, value: Any) -> None:
        """Set this directive's value at this level (first use wins the location)."""
        self.level.values[self.name] = value
        self.level.locations.setdefault(self.name, (self.file, self.line))

    def store_once(self, value: Any) -> None:
        """Set the value; a second use at the same level is nginx's ``is duplicate``."""
        if self.name in self.level.values:
            raise self.slot_error("is duplicate")
        self.store(value)

    def append(self, value: Any) -> None:
        """Add to this level's list of values (array slots)."""
        self.extend((value,))

    def extend(self, values) -> None:
        """Add ``values`` to this level's list.  The list grows in place while the
        configuration is read (repeating a directive costs the same each time) and
        becomes a tuple when the levels are frozen for merging (``Level.freeze``)."""
        current = self.level.values.get(self.name)
        if current is None:
            self.store(list(values))
        else:
            current.extend(values)


Handler = Callable[[Call], None]


@dataclass(frozen=True)
class Directive:
    """A directive as nginx's ngx_command_t, plus its default, merge rule and docs.

    ``nargs`` is (minimum, maximum) arguments after the name; maximum None means "or
    more".  ``flag`` marks on/off directives (nginx counts them separately).  ``block``
    directives end with ``{``.  ``default`` is the value a server gets when neither level
    sets it (a callable receives the loader, for defaults computed at load time).
    ``own`` marks mailgate's own directives, which nginx lacks (the generated table
    says so).
    """

    name: str
    module: str
    context: Ctx
    nargs: tuple[int, int | None]
    handler: Handler
    default: Any = UNSET
    merge: Merge = Merge.INHERIT
    block: bool = False
    syntax: str = ""
    doc_default: str = "—"
    since: str = ""
    summary: str = ""
    own: bool = False

    def accepts(self, count: int) -> bool:
        low, high = self.nargs
        return count >= low and (high is None or count <= high)


# --- nginx's generic slots -------------------------------------------------------


def flag_slot(call: Call) -> None:
    """``on`` | ``off`` (any case), once per level."""
    if call.name in call.level.values:
        raise call.slot_error("is duplicate")
    value = call.args[0].lower()
    if value not in ("on", "off"):
        raise call.error(
            'invalid value "%s" in "%s" directive, it must be "on" or "off"'
            % (call.args[0], call.name)
        )
    call.store(value == "on")


def _parsed_once(call: Call, parse: Callable[[str], Any], invalid: str = "invalid value") -> Any:
    """The argument of a once-per-level directive, parsed; ``parse`` returns None for
    a bad one, which nginx reports as ``invalid`` (a repeat is reported first)."""
    if call.name in call.level.values:
        raise call.slot_error("is duplicate")
    value = parse(call.args[0])
    if value is None:
        raise call.slot_error(invalid)
    return value


def msec_slot(call: Call) -> None:
    """A time stored as float seconds (nginx keeps milliseconds)."""
    call.store(_parsed_once(call, lambda text: parse_time(text, seconds=False)) / 1000)


def sec_slot(call: Call) -> None:
    """A time in whole seconds."""
    call.store(_parsed_once(call, lambda text: parse_time(text, seconds=True)))


def size_slot(call: Call) -> None:
    """A size in bytes (``k``, ``m`` suffixes)."""
    call.store(_parsed_once(call, parse_size))


def num_slot(call: Call) -> None:
    """A non-negative decimal number."""
    call.store(_parsed_once(call, atoi, "invalid number"))


def str_slot(call: Call) -> None:
    """A string, once per level."""
    call.store_once(call.args[0])


def str_array_slot(call: Call) -> None:
    """A string each use appends to this level's list."""
    call.append(call.args[0])


def keyval_slot(call: Call) -> None:
    """A ``name value`` pair each use appends to this level's list."""
    call.append((call.args[0], call.args[1]))


def enum_slot(values: Iterable[str]) -> Handler:
    """One keyword of ``values`` (any case), stored in its declared spelling."""
    table = {v.lower(): v for v in values}

    def handler(call: Call) -> None:
        if call.name in call.level.values:
            raise call.slot_error("is duplicate")
        value = table.get(call.args[0].lower())
        if value is None:
            raise call.error('invalid value "%s"' % call.args[0])
        call.store(value)

    handler.__doc__ = "one of: " + " | ".join(table.values())
    return handler


def bitmask_slot(values: Iterable[str]) -> Handler:
    """Keywords of ``values`` (any case); uses at one level add up (nginx ORs them)."""
    table = {v.lower(): v for v in values}

    def handler(call: Call) -> None:
        current = set(call.level.values.get(call.name, ()))
        for word in call.args:
            value = table.get(word.lower())
            if value is None:
                raise call.error('invalid value "%s"' % word)
            if value in current:
                call.warn('duplicate value "%s"' % word)
            current.add(value)
        call.store(frozenset(current))

    handler.__doc__ = "some of: " + " ".join(table.values())
    return handler

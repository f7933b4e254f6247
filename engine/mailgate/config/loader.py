"""Reading a configuration: the parse driver, ``include``, blocks, and the merge.

The loader consumes the lexer's statements one at a time and hands each to its
directive's handler, so errors come out in nginx's order with nginx's locations.
After parsing, servers are merged module by module in nginx's module order
(core, ssl, pop3, imap, smtp, auth_http, proxy, realip), each module checking its
part for every server before the next module runs.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from types import MappingProxyType
from typing import Any, Callable, Iterator

from mailgate.config.errors import ConfigError, ConfigMessage
from mailgate.config.lexer import ENCODING, End, Statement, tokenize
from mailgate.config.model import Config, MainConfig, ServerConfig
from mailgate.config.registry import UNSET, Call, Ctx, Directive, Level, Merge
from mailgate.oserror import os_error_text

__all__ = ["Loader", "MergeStep", "COMMAND_LINE"]

COMMAND_LINE = "command line"
MAX_INCLUDE_DEPTH = 64
MAX_CONFIG_BYTES = 64 * 1024 * 1024
"""What all the files of one configuration may hold together.  nginx has no limit; a
mail configuration is kilobytes, and without one an ``include`` of something endless
would take all the memory there is (docs/differences.md#configuration)."""
_READ_SIZE = 1024 * 1024


class MergeStep:
    """What a module's merge function sees for one server: both levels and the result."""

    def __init__(self, loader: "Loader", server: Level, mail: Level, values: dict[str, Any]):
        self.loader = loader
        self.server = server
        self.mail = mail
        self.values = values

    def inherited(self, name: str, default: Any = UNSET) -> Any:
        """The server's value, else mail{}'s, else ``default``."""
        value = self.server.get(name)
        if value is UNSET:
            value = self.mail.get(name)
        return default if value is UNSET else value

    def location(self, name: str) -> tuple[str, int] | None:
        """Where the inherited value of ``name`` was set."""
        if name in self.server.locations:
            return self.server.locations[name]
        return self.mail.locations.get(name)

    def error(self, message: str) -> ConfigError:
        """An error located at the server {} block, as nginx's merge errors are."""
        return ConfigError(message, self.server.file, self.server.line)


class Loader:
    """One reading of a configuration.  Use ``mailgate.config.load_config`` instead."""

    def __init__(
        self,
        prefix: str,
        conf_file: str,
        conf_prefix: str,
        *,
        hostname: str | None = None,
        on_message: Callable[[ConfigMessage], None] | None = None,
        require_auth_http: bool = True,
    ):
        from mailgate.config.modules import DIRECTIVES, MAIL_MODULES, MAIN_MODULE

        self.directives: dict[str, Directive] = DIRECTIVES
        self.mail_modules = MAIL_MODULES
        self.main_module = MAIN_MODULE
        self.prefix = prefix
        self.conf_file = conf_file
        self.conf_prefix = conf_prefix
        self.hostname = hostname
        self.on_message = on_message
        self.require_auth_http = require_auth_http
        self.messages: list[ConfigMessage] = []
        self.files: list[tuple[str, str]] = []
        self.main = Level(Ctx.MAIN, conf_file, 0)
        self.events: Level | None = None
        self.mail: Level | None = None
        self.mail_end: tuple[str, int] | None = None
        self.servers: list[Level] = []
        self.zones: dict[str, int] = {}
        self.listen_addresses: set[tuple[int, str, int]] = set()
        self._stream: Iterator[Statement] = iter(())
        self._depth = 0
        self._bytes_read = 0  # of every file read so far (MAX_CONFIG_BYTES)

    # --- helpers for handlers ----------------------------------------------------

    def message(self, level: str, message: str, file: str | None, line: int | None) -> None:
        """Record a notice or warning, and pass it on at once (it precedes any error)."""
        item = ConfigMessage(level, message, file, line)
        self.messages.append(item)
        if self.on_message is not None:
            self.on_message(item)

    def full_name(self, name: str, *, conf_prefix: bool = True) -> str:
        """A path made absolute against the configuration's directory (or the prefix).

        nginx's paths are C strings: a name ends at its first NUL byte
        (ngx_conf_full_name() hands the bytes on, and the system call stops there).
        """
        name = name.partition("\0")[0]
        if not name or os.path.isabs(name):
            return name
        return os.path.join(self.conf_prefix if conf_prefix else self.prefix, name)

    def machine_hostname(self) -> str:
        """gethostname(), lower-cased, as nginx's default ``server_name``."""
        if self.hostname is None:
            self.hostname = socket.gethostname().lower()
        return self.hostname

    # --- parsing -------------------------------------------------------------------

    def read_file(self, path: str, call: Call | None = None) -> None:
        """Parse a whole file in the current context (the main file, or an include)."""
        if self._depth >= MAX_INCLUDE_DEPTH and call is not None:
            # nginx would recurse until it runs out of file descriptors
            raise call.error('too deep nesting of "include" at "%s"' % path)
        def error(message: str) -> ConfigError:
            return ConfigError(message) if call is None else call.error(message)

        try:
            data = self._read_bounded(path, error)
        except OSError as exc:
            raise error('open() "%s" failed %s' % (path, os_error_text(exc))) from None
        text = data.decode(*ENCODING)
        self.files.append((path, text))
        self._depth += 1
        try:
            self.parse_text(
                text, path, call.level if call else self.main, call.level.ctx if call else Ctx.MAIN
            )
        finally:
            self._depth -= 1

    def _read_bounded(self, path: str, error: Callable[[str], ConfigError]) -> bytes:
        """A regular file's bytes, read in chunks up to what is left of MAX_CONFIG_BYTES.

        A device, a FIFO or a socket (``/dev/zero``, ``/dev/stdin``) is refused before a
        byte is read: reading one may never end.  The file is opened non-blocking, so
        that opening a FIFO without a writer does not wait for one.
        """
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb", buffering=0) as f:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            if not stat.S_ISREG(mode):
                raise error('"%s" is not a regular file' % path)
            chunks = []
            while True:
                left = MAX_CONFIG_BYTES - self._bytes_read
                chunk = f.read(min(_READ_SIZE, left + 1))
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                self._bytes_read += len(chunk)
                if self._bytes_read > MAX_CONFIG_BYTES:
                    raise error('"%s" is too large: a configuration may hold %d bytes in all'
                                % (path, MAX_CONFIG_BYTES))

    def parse_text(
        self, text: str, file: str, level: Level, ctx: Ctx, *, parameter: bool = False
    ) -> None:
        saved = self._stream
        self._stream = tokenize(text, file, parameter=parameter)
        try:
            self._parse(level, ctx, in_block=False)
        finally:
            self._stream = saved

    def parse_block(self, level: Level, ctx: Ctx) -> tuple[str, int]:
        """Parse up to the ``}`` closing the block just opened; return the ``}``'s place."""
        return self._parse(level, ctx, in_block=True)

    def skip_block(self) -> None:
        """Consume a block whose contents mailgate does not serve (http, stream)."""
        depth = 1
        for statement in self._stream:
            if statement.end is End.BLOCK_START:
                depth += 1
            elif statement.end is End.BLOCK_END:
                depth -= 1
                if depth == 0:
                    return
            elif statement.end is End.EOF:
                raise ConfigError('unexpected end of file, expecting "}"', statement.file, statement.line)

    def _parse(self, level: Level, ctx: Ctx, *, in_block: bool) -> tuple[str, int]:
        for statement in self._stream:
            if statement.end is End.EOF:
                if in_block:
                    raise ConfigError(
                        'unexpected end of file, expecting "}"', statement.file, statement.line
                    )
                return statement.file, statement.line
            if statement.end is End.BLOCK_END:
                if not in_block:
                    raise ConfigError('unexpected "}"', statement.file, statement.line)
                return statement.file, statement.line
            self._handle(statement, level, ctx)
        raise AssertionError("the lexer always ends with EOF")  # pragma: no cover

    def _handle(self, statement: Statement, level: Level, ctx: Ctx) -> None:
        name, args = statement.words[0], statement.words[1:]
        file, line = statement.file, statement.line
        directive = self.directives.get(name)
        if directive is None:
            raise ConfigError('unknown directive "%s"' % name, file, line)
        if not directive.context & ctx:
            raise ConfigError('"%s" directive is not allowed here' % name, file, line)
        if not directive.block and statement.end is not End.SEMICOLON:
            raise ConfigError('directive "%s" is not terminated by ";"' % name, file, line)
        if directive.block and statement.end is not End.BLOCK_START:
            raise ConfigError('directive "%s" has no opening "{"' % name, file, line)
        if not directive.accepts(len(args)):
            raise ConfigError('invalid number of arguments in "%s" directive' % name, file, line)
        directive.handler(Call(directive, args, file, line, level, self))

    # --- merging -----------------------------------------------------------------

    def build(self) -> Config:
        """Merge every server and assemble the immutable Config."""
        for level in (self.main, self.events, self.mail, *self.servers):
            if level is not None:
                level.freeze()
        main = self.main_module.build_main(self)
        mail = self.mail or Level(Ctx.MAIL, self.conf_file, 0)
        values = [dict() for _ in self.servers]
        for module in self.mail_modules:
            for server, merged in zip(self.servers, values):
                step = MergeStep(self, server, mail, merged)
                for directive in module.DIRECTIVES:
                    if directive.merge is Merge.INHERIT:
                        merged[directive.name] = step.inherited(
                            directive.name, self._default(directive, step)
                        )
                    elif directive.merge is Merge.SERVER_ONLY:
                        merged[directive.name] = server.get(
                            directive.name, self._default(directive, step)
                        )
                merge: Callable[[MergeStep, MainConfig], None] | None = getattr(module, "merge", None)
                if merge is not None:
                    merge(step, main)
        servers = tuple(
            ServerConfig(
                file=server.file,
                line=server.line,
                locations=MappingProxyType(
                    {**mail.locations, **server.locations}
                ),
                **merged,
            )
            for server, merged in zip(self.servers, values)
        )
        # settings of the mail{} context itself (no server has them): from the modules
        # that have such directives
        mail_settings: dict[str, Any] = {}
        for module in self.mail_modules:
            build_mail = getattr(module, "build_mail", None)
            if build_mail is not None:
                mail_settings.update(build_mail(mail))
        return Config(
            prefix=self.prefix,
            conf_prefix=self.conf_prefix,
            conf_file=self.conf_file,
            main=main,
            servers=servers,
            has_mail=self.mail is not None,
            messages=tuple(self.messages),
            files=tuple(self.files),
            **mail_settings,
        )

    def _default(self, directive: Directive, step: MergeStep) -> Any:
        default = directive.default
        return default(step) if callable(default) else default


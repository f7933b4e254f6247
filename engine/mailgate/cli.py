"""The ``mailgate`` command, with nginx's options and messages.

    mailgate [-?hvVtTq] [-s signal] [-p prefix] [-e filename] [-c filename] [-g directives]
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from mailgate._version import __version__
from mailgate.config import ConfigError, ConfigMessage, default_prefix, load_config
from mailgate.log import format_line, write_stderr
from mailgate.oserror import os_error_text
from mailgate.process.cycle import check_worker_connections
from mailgate.process.listeners import check_bindable
from mailgate.proxy.session_store import check_packages
from mailgate.tls import build_client_contexts, build_contexts

__all__ = ["main", "DEFAULT_CONF", "Options"]

NAME = "mailgate"
DEFAULT_CONF = "/etc/mailgate/mailgate.conf"
SIGNALS = ("stop", "quit", "reopen", "reload")

USAGE = """\
Usage: mailgate [-?hvVtTq] [-s signal] [-p prefix]
                [-e filename] [-c filename] [-g directives]
       mailgate demo [--host address] [--dir directory] [--any-ports]

Options:
  -?,-h         : this help
  -v            : show version and exit
  -V            : show version, OpenSSL and extension details, then exit
  -t            : test configuration and exit
  -T            : test configuration, dump it and exit
  -q            : suppress non-error messages during configuration testing
  -s signal     : send signal to a master process: stop, quit, reopen, reload
  -p prefix     : set prefix path (default: the current directory)
  -e filename   : set error log file (default: stderr)
  -c filename   : set configuration file (default: %s)
  -g directives : set global directives out of configuration file
""" % DEFAULT_CONF


class UsageError(Exception):
    """A command line nginx would refuse; the text is nginx's."""


@dataclass
class Options:
    """The parsed command line."""

    help: bool = False
    version: bool = False
    version_details: bool = False
    test: bool = False
    dump: bool = False
    quiet: bool = False
    signal: str | None = None
    prefix: str | None = None
    error_log: str | None = None
    conf_file: str = DEFAULT_CONF
    directives: str | None = None
    extra: list[str] = field(default_factory=list)


_TAKES_VALUE = {"s": "parameter", "p": "directory name", "e": "file name", "c": "file name",
                "g": "parameter"}


def parse_args(argv: list[str]) -> Options:
    """nginx's option syntax: flags may be combined (-tq); values follow or are attached."""
    opts = Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or len(arg) < 2:
            raise UsageError('invalid option: "%s"' % arg)
        pos = 1
        while pos < len(arg):
            flag = arg[pos]
            pos += 1
            if flag in "?h":
                opts.help = opts.version = True
            elif flag == "v":
                opts.version = True
            elif flag == "V":
                opts.version = opts.version_details = True
            elif flag == "t":
                opts.test = True
            elif flag == "T":
                opts.test = opts.dump = True
            elif flag == "q":
                opts.quiet = True
            elif flag in _TAKES_VALUE:
                if pos < len(arg):
                    value = arg[pos:]
                elif i < len(argv):
                    value = argv[i]
                    i += 1
                else:
                    raise UsageError('option "-%s" requires %s' % (flag, _TAKES_VALUE[flag]))
                if flag == "s":
                    if value not in SIGNALS:
                        raise UsageError('invalid option: "-s %s"' % value)
                    opts.signal = value
                elif flag == "p":
                    opts.prefix = value
                elif flag == "e":
                    opts.error_log = value
                elif flag == "c":
                    opts.conf_file = value
                else:
                    opts.directives = value
                break
            else:
                raise UsageError('invalid option: "%s"' % arg[pos - 1 :])
    return opts


class StartupLog:
    """The log used before the configuration's own error_log is open (``-e``, or stderr).

    Like nginx, a line goes to the startup log in the error_log format and, when that
    log is a file, also to stderr as ``mailgate: [level] message`` for warn and above.
    """

    def __init__(self, path: str | None, prefix: str):
        self.file = None
        if path and path != "stderr":
            full = path if os.path.isabs(path) else os.path.join(prefix, path)
            try:
                self.file = open(full, "a", encoding="utf-8", errors="surrogateescape")
            except OSError as exc:
                write_stderr(
                    '%s: [alert] could not open error log file: open() "%s" failed %s\n'
                    % (NAME, full, os_error_text(exc))
                )

    def log(self, level: str, message: str) -> None:
        line = format_line(level, message)
        if self.file is None:
            write_stderr(line)
            return
        self.file.write(line)
        self.file.flush()
        if level in ("emerg", "alert", "crit", "error", "warn"):
            # raw bytes as nginx prints them: a config's invalid UTF-8 stays as it was
            write_stderr("%s: [%s] %s\n" % (NAME, level, message))

    def message(self, item: ConfigMessage) -> None:
        self.log(item.level, str(item))


def _stderr(text: str) -> None:
    write_stderr("%s: %s\n" % (NAME, text))


def version_text(details: bool) -> str:
    """What ``-v`` / ``-V`` print."""
    lines = ["mailgate version: mailgate/%s" % __version__]
    if details:
        from mailgate import _build_info

        lines.extend(_build_info.describe())
    return "\n".join(lines) + "\n"


def test_configuration(opts: Options, log: StartupLog, prefix: str) -> int:
    """``-t`` / ``-T``: nginx's two success lines or the failure line; 0 or 1."""
    conf_path = os.path.normpath(os.path.join(prefix, opts.conf_file))
    def on_message(item: ConfigMessage) -> None:
        if not (opts.quiet and item.level == "notice"):
            log.message(item)

    try:
        config = load_config(opts.conf_file, prefix, directives=opts.directives, on_message=on_message)
        # TLS contexts are built while nginx merges the configuration: their errors
        # come before "syntax is ok"
        check_packages(build_contexts(config, on_message=on_message))
        build_client_contexts(config, on_message=on_message)
        check_worker_connections(config)
        if not opts.quiet:
            _stderr("the configuration file %s syntax is ok" % conf_path)
        check_bindable(config)
    except ConfigError as exc:
        log.log("emerg", str(exc))
        _stderr("configuration file %s test failed" % conf_path)
        return 1
    if not opts.quiet:
        _stderr("configuration file %s test is successful" % conf_path)
    if opts.dump:
        out = sys.stdout
        for path, text in config.files:
            out.write("# configuration file %s:\n%s\n" % (path, text))
        out.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mailgate`` command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["demo"]:
        from mailgate.demo.command import main as demo

        return demo(argv[1:])
    try:
        opts = parse_args(argv)
    except UsageError as exc:
        _stderr(str(exc))
        return 1
    if opts.version:
        sys.stderr.write(version_text(opts.version_details))
        if opts.help:
            sys.stderr.write(USAGE)
        if not opts.test:
            return 0
    prefix = os.path.join(os.path.abspath(opts.prefix), "") if opts.prefix else default_prefix()
    log = StartupLog(opts.error_log, prefix)
    if opts.test:
        return test_configuration(opts, log, prefix)
    from mailgate.process.master import run

    return run(opts, log, prefix)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""nginx ``mail {}`` configuration: reading, checking, merging, and the typed result.

>>> config = load_config("/etc/mailgate/mail.conf")
>>> config = Config.from_string("mail { ... }", prefix="/etc/mailgate/")
"""

from __future__ import annotations

import os
from typing import Callable

from mailgate.config.errors import ConfigError, ConfigMessage
from mailgate.config.loader import COMMAND_LINE, Loader
from mailgate.config.model import (
    AuthHttpTarget,
    Config,
    Listen,
    ListenSocket,
    LogTarget,
    MainConfig,
    PasswordFile,
    Resolver,
    ServerConfig,
    SessionCacheSetting,
    SessionStoreSetting,
    SharedZone,
)

__all__ = [
    "AuthHttpTarget",
    "Config",
    "ConfigError",
    "ConfigMessage",
    "Listen",
    "ListenSocket",
    "LogTarget",
    "MainConfig",
    "PasswordFile",
    "Resolver",
    "ServerConfig",
    "SessionCacheSetting",
    "SessionStoreSetting",
    "SharedZone",
    "load_config",
    "default_prefix",
]


def default_prefix() -> str:
    """The prefix when none is given: the current directory, as nginx built without one."""
    return os.path.join(os.getcwd(), "")


def _prefix(prefix: str | None) -> str:
    return os.path.join(os.path.abspath(prefix), "") if prefix else default_prefix()


def load_config(
    path: str,
    prefix: str | None = None,
    *,
    directives: str | None = None,
    hostname: str | None = None,
    on_message: Callable[[ConfigMessage], None] | None = None,
    require_auth_http: bool = True,
) -> Config:
    """Read, check and merge a configuration file; raise ConfigError as nginx would.

    A relative ``path`` is taken from the prefix (as ``nginx -c``); ``directives`` are
    extra main-context directives read first (``-g``); ``hostname`` replaces the
    machine's name as the default ``server_name``; ``on_message`` receives each notice
    and warning as it is met (they are also in ``Config.messages``).  With
    ``require_auth_http=False`` a server may lack ``auth_http`` (for an embedding
    service that authenticates with its own callable).
    """
    prefix = _prefix(prefix)
    conf_file = os.path.normpath(os.path.join(prefix, path))
    loader = Loader(
        prefix,
        conf_file,
        os.path.join(os.path.dirname(conf_file), ""),
        hostname=hostname,
        on_message=on_message,
        require_auth_http=require_auth_http,
    )
    try:
        if directives:
            loader.parse_text(directives, COMMAND_LINE, loader.main, loader.main.ctx,
                              parameter=True)
        loader.read_file(conf_file)
        return loader.build()
    except MemoryError:
        # a configuration within MAX_CONFIG_BYTES that still exhausts memory: refused
        # like any other bad configuration (the caller keeps what it had)
        raise ConfigError("not enough memory to read the configuration", conf_file) from None


def _from_string(
    cls,
    text: str,
    prefix: str | None = None,
    *,
    name: str = "<string>",
    hostname: str | None = None,
    require_auth_http: bool = True,
) -> Config:
    """A configuration from text; relative paths resolve against ``prefix``.

    ``require_auth_http=False`` lets servers omit ``auth_http`` when an embedding
    service passes its own auth callable to ``MailProxy``.
    """
    prefix = _prefix(prefix)
    loader = Loader(prefix, name, prefix, hostname=hostname, require_auth_http=require_auth_http)
    loader.files.append((name, text))
    loader.parse_text(text, name, loader.main, loader.main.ctx)
    return loader.build()


Config.from_string = classmethod(_from_string)  # type: ignore[attr-defined]

"""mailgate: an embeddable IMAP/POP3/SMTP proxy engine that reads nginx's mail {} configuration.

The configuration API (``load_config``, ``Config``) imports nothing heavy; the proxy
(``MailProxy``) and the auth types load the TLS bindings on first use.
"""

from mailgate._version import __version__
from mailgate.config import Config, ConfigError, ServerConfig, load_config

__all__ = [
    "AuthFacts",
    "AuthFailed",
    "AuthOK",
    "AuthRetry",
    "Config",
    "ConfigError",
    "MailProxy",
    "ServerConfig",
    "__version__",
    "load_config",
]

_LAZY = {
    "MailProxy": ("mailgate.proxy.mailproxy", "MailProxy"),
    "AuthFacts": ("mailgate.auth.facts", "AuthFacts"),
    "AuthOK": ("mailgate.protocol.events", "AuthOK"),
    "AuthFailed": ("mailgate.protocol.events", "AuthFailed"),
    "AuthRetry": ("mailgate.protocol.events", "AuthRetry"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError("module 'mailgate' has no attribute %r" % name)

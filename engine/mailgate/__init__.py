"""mailgate: an embeddable IMAP/POP3/SMTP proxy engine that reads nginx's mail {} configuration."""

from mailgate._version import __version__
from mailgate.config import Config, ConfigError, ServerConfig, load_config

__all__ = ["Config", "ConfigError", "ServerConfig", "__version__", "load_config"]

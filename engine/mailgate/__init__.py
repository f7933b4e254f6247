"""mailgate: an embeddable IMAP/POP3/SMTP proxy engine that reads nginx's mail {} configuration."""

from mailgate._version import __version__

__all__ = ["__version__"]

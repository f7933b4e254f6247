"""Authentication: the ``auth_http`` client, and the facts given to an embedding hook."""

from mailgate.auth.facts import AuthFacts, ProxyAddresses, SSLFacts

__all__ = ["AuthFacts", "ProxyAddresses", "SSLFacts"]

"""Configurations for the TLS tests: implicit-TLS servers on ports never bound (the test
servers pick their own), their certificates from the test PKI, and their TLS contexts."""

from __future__ import annotations

from mailgate.config import Config
from mailgate.tls import SessionZones, TLSContext, build_contexts

from tests.support import configs
from tests.support.configs import certificates


def load(directory, *servers: str, mail: str = "", protocol: str = "imap") -> Config:
    """A ``mail {}`` with one TLS server per body, written to and read from ``directory``."""
    blocks = [configs.server_block(body, listen=f"127.0.0.1:{20000 + i} ssl", protocol=protocol)
              for i, body in enumerate(servers)]
    return configs.load(configs.mail_text(*blocks, mail=mail), directory)


def context(directory, pki, body: str = "", *, names=("ecdsa",), mail: str = "",
            protocol: str = "imap", zones: SessionZones | None = None,
            messages: list | None = None) -> TLSContext:
    """The context of a one-server configuration with the PKI's server certificates ``names``."""
    config = load(directory, certificates(pki, *names) + body, mail=mail, protocol=protocol)
    if zones is None:
        zones = SessionZones()
    zones.configure(config)
    on_message = messages.append if messages is not None else None
    return build_contexts(config, zones, on_message=on_message)[0]

"""Configurations for the TLS tests, written in nginx syntax and read by mailgate.config."""

from __future__ import annotations

import os

from mailgate.config import Config
from mailgate.tls import SessionZones, TLSContext, build_contexts


def config_text(*servers: str, mail: str = "", protocol: str = "imap") -> str:
    """A mail{} block with one server{} per body; the listen addresses are
    never bound (the test servers pick their own ports)."""
    blocks = []
    for i, body in enumerate(servers):
        blocks.append(
            "    server {\n"
            f"        listen 127.0.0.1:{20000 + i} ssl;\n"
            f"        protocol {protocol};\n"
            f"{body}\n"
            "    }\n"
        )
    return "mail {\n    auth_http 127.0.0.1:9/auth;\n" + mail + "\n" + "".join(blocks) + "}\n"


def load(directory, *servers: str, mail: str = "", protocol: str = "imap") -> Config:
    directory = str(directory)
    os.makedirs(directory, exist_ok=True)
    text = config_text(*servers, mail=mail, protocol=protocol)
    path = os.path.join(directory, "mail.conf")
    with open(path, "w") as f:
        f.write(text)
    return Config.from_string(text, prefix=os.path.join(directory, ""), name=path)


def certs(pki, *names: str) -> str:
    """ssl_certificate/ssl_certificate_key lines for the PKI's server certificates
    ``rsa``, ``ecdsa``, ``other``."""
    return "".join(
        f"        ssl_certificate {files.cert};\n        ssl_certificate_key {files.key_file};\n"
        for files in (getattr(pki, "server_" + name) for name in names)
    )


def context(directory, pki, body: str = "", *, names=("ecdsa",), mail: str = "",
            protocol: str = "imap", zones: SessionZones | None = None,
            messages: list | None = None) -> TLSContext:
    """The context of a one-server configuration."""
    config = load(directory, certs(pki, *names) + body, mail=mail, protocol=protocol)
    if zones is None:
        zones = SessionZones()
    zones.configure(config)
    on_message = messages.append if messages is not None else None
    return build_contexts(config, zones, on_message=on_message)[0]

"""Configuration text in nginx's syntax for the tests, built the same way everywhere.

* Configurations that mailgate reads in the test process: ``mail_text(*servers, mail=,
  main=)`` with one ``server_block(body, listen=, protocol=)`` per server, and
  ``certificates(pki, "ecdsa", ...)`` for the test PKI's server certificates; ``load(text)``
  reads one (with ``directory=``: written there as ``mail.conf``, read with that prefix).
* ``mail {}`` bodies for the proxies that tests start (``MailProxy``, ``EmbeddedProxy``),
  which fill in ``${port_NAME}``, ``$auth_http`` and the PKI's ``$rsa_cert`` ...:
  ``one_server_each(mail)`` (a plain server per protocol), ``TLS`` (certificate and
  protocols), ``STANDARD`` (a server per protocol and security, see ``PORTS``).
"""

from __future__ import annotations

from pathlib import Path

from mailgate import Config

from .certs import PKI

__all__ = [
    "AUTH_HTTP",
    "PORTS",
    "SECURITIES",
    "STANDARD",
    "TLS",
    "certificates",
    "load",
    "mail_text",
    "one_server_each",
    "server_block",
]

AUTH_HTTP = "127.0.0.1:9"
"""An ``auth_http`` nothing answers: for configurations that are read, never served."""


def server_block(body: str = "", *, listen: str = "127.0.0.1:30143", protocol: str = "imap") -> str:
    """``server { listen LISTEN; protocol PROTOCOL; BODY }``."""
    return f"    server {{ listen {listen}; protocol {protocol};\n        {body}\n    }}\n"


def mail_text(*servers: str, mail: str = "", main: str = "", auth_http: str = AUTH_HTTP) -> str:
    """A whole configuration: ``MAIN mail { auth_http AUTH_HTTP; MAIL SERVERS }``."""
    return f"{main}\nmail {{\n    auth_http {auth_http};\n    {mail}\n{''.join(servers)}}}\n"


def certificates(pki: PKI, *names: str) -> str:
    """``ssl_certificate``/``ssl_certificate_key`` of the PKI's server certificates
    ``rsa``, ``ecdsa``, ``other``."""
    return "".join(
        f"ssl_certificate {files.cert}; ssl_certificate_key {files.key_file};\n"
        for files in (getattr(pki, "server_" + name) for name in names)
    )


def load(text: str, directory: Path | str | None = None, **kwargs: object) -> Config:
    """``Config.from_string(text)``; with a ``directory``, the text is written there as
    ``mail.conf`` and read as that file, relative paths resolving in the directory."""
    if directory is None:
        return Config.from_string(text, **kwargs)  # type: ignore[arg-type]
    path = Path(directory) / "mail.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return Config.from_string(text, prefix=f"{path.parent}/", name=str(path), **kwargs)  # type: ignore[arg-type]


# -- mail {} bodies for the proxies tests start ---------------------------------------------


def one_server_each(mail: str = "", *, smtp: str = "") -> str:
    """``server_name mx.test``, ``$auth_http``, ``MAIL`` and a plain server per protocol on
    ``${port_imap}``, ``${port_pop3}``, ``${port_smtp}`` (``smtp``: more for the last)."""
    return f"""
    server_name mx.test;
    auth_http $auth_http;
    {mail}
    server {{ listen 127.0.0.1:${{port_imap}}; protocol imap; }}
    server {{ listen 127.0.0.1:${{port_pop3}}; protocol pop3; }}
    server {{ listen 127.0.0.1:${{port_smtp}}; protocol smtp; {smtp}}}
"""


TLS = """
    ssl_certificate $rsa_cert;
    ssl_certificate_key $rsa_key;
    ssl_protocols TLSv1.2 TLSv1.3;   # nginx 1.22's default lacks TLSv1.3
"""

STANDARD = """
    server_name mx.test;
    auth_http $auth_http;
""" + TLS + """
    server { listen 127.0.0.1:${port_imap}; protocol imap; starttls on; }
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; starttls on;
             pop3_auth plain apop cram-md5; }
    server { listen 127.0.0.1:${port_pop3s} ssl; protocol pop3; }
    server { listen 127.0.0.1:${port_smtp}; protocol smtp; starttls on;
             smtp_auth login plain cram-md5; }
    server { listen 127.0.0.1:${port_smtps} ssl; protocol smtp; smtp_auth login plain; }
"""
"""One server per protocol and security: plain with STARTTLS, and implicit TLS."""

PORTS = {
    ("imap", "plain"): "imap", ("imap", "starttls"): "imap", ("imap", "ssl"): "imaps",
    ("pop3", "plain"): "pop3", ("pop3", "starttls"): "pop3", ("pop3", "ssl"): "pop3s",
    ("smtp", "plain"): "smtp", ("smtp", "starttls"): "smtp", ("smtp", "ssl"): "smtps",
}
"""(protocol, security) → the port name in STANDARD."""

SECURITIES = ("plain", "starttls", "ssl")

"""Server configs for the protocol tests, built by the real configuration loader.

:func:`server_config` writes a one-server ``mail {}`` block in nginx syntax from
keyword overrides (named after the ``ServerConfig`` attributes, with their Python
values) and returns the merged ``ServerConfig`` that ``mailgate.Config.from_string``
produces, so every default the machines see comes from the directive registry.
"""

from __future__ import annotations

from tests.support.configs import load, mail_text, server_block

_FLAGS = {"proxy_pass_error_message", "proxy_smtp_auth", "xclient", "proxy_ssl", "proxy_starttls",
          "proxy_imap_id", "proxy_pop3_xclient", "auth_http_pass_imap_id"}
_TIMES = {"timeout", "smtp_greeting_delay"}
_LISTS = {"imap_auth", "pop3_auth", "smtp_auth", "imap_capabilities",
          "pop3_capabilities", "smtp_capabilities"}
_PORTS = {"imap": 143, "pop3": 110, "smtp": 25}


def _value(name: str, value) -> str:
    if name in _FLAGS:
        return "on" if value else "off"
    if name in _TIMES:
        return f"{round(value * 1000)}ms"
    if name in _LISTS:
        return " ".join('"%s"' % v for v in value)
    if name == "imap_id":
        return " ".join('"%s" "%s"' % pair for pair in value)
    return str(value)


def server_config(protocol: str = "imap", **overrides):
    """A merged ``ServerConfig`` for ``protocol`` with nginx's defaults and ``overrides``."""
    lines = [f"{name} {_value(name, value)};" for name, value in overrides.items()
             if name not in _LISTS or value]  # an empty list is the directive left unset
    if overrides.get("starttls", "off") != "off":
        # STARTTLS needs a certificate; it is only loaded when a TLS context is built
        lines.append("ssl_certificate /nonexistent/server.crt; "
                     "ssl_certificate_key /nonexistent/server.key;")
    server = server_block(" ".join(lines), listen=f"127.0.0.1:{_PORTS[protocol]}",
                          protocol=protocol)
    (config,) = load(mail_text(server, mail="server_name mx.test;")).servers
    return config

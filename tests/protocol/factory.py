"""Server configs for the protocol tests, built by the real configuration loader.

:func:`server_config` writes a one-server ``mail {}`` block in nginx syntax from
keyword overrides (named after the ``ServerConfig`` attributes) and returns the
merged ``ServerConfig`` that ``mailgate.Config.from_string`` produces, so every
default the machines see comes from the directive registry.
"""

from __future__ import annotations

import mailgate

_FLAGS = {"proxy_pass_error_message", "proxy_smtp_auth", "xclient"}
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
    return str(value)


def server_text(protocol: str = "imap", **overrides) -> str:
    """The nginx configuration text for one server with ``overrides``."""
    lines = [f"listen 127.0.0.1:{_PORTS[protocol]};", f"protocol {protocol};"]
    for name, value in overrides.items():
        if name in _LISTS and not value:
            continue        # an empty list is the directive left unset
        lines.append(f"{name} {_value(name, value)};")
    if overrides.get("starttls", "off") != "off":
        # STARTTLS needs a certificate; it is only loaded when a TLS context is built
        lines += ["ssl_certificate /nonexistent/server.crt;",
                  "ssl_certificate_key /nonexistent/server.key;"]
    body = "\n        ".join(lines)
    return (f"mail {{\n    server_name mx.test;\n    auth_http 127.0.0.1:9000/auth;\n"
            f"    server {{\n        {body}\n    }}\n}}\n")


def server_config(protocol: str = "imap", **overrides):
    """A merged ``ServerConfig`` for ``protocol`` with nginx's defaults."""
    config = mailgate.Config.from_string(server_text(protocol, **overrides))
    (server,) = config.servers
    return server

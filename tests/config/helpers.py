"""Helpers for configuration tests: build configs from text, run nginx -t as reference."""

from __future__ import annotations

import os
import re
import subprocess
import textwrap

import pytest

from mailgate.config import Config, ConfigError

from tests.support.components import NGINX, NGINX_MAIL_MODULE
from tests.support.configs import AUTH_HTTP, load, mail_text, server_block

LOG_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (.*)$")

AUTH = f"auth_http {AUTH_HTTP};"


def conf(text: str, **kw) -> Config:
    """A Config from text (dedented), on the host ``testhost`` unless ``hostname`` is given."""
    kw.setdefault("hostname", "testhost")
    return load(textwrap.dedent(text), **kw)


def server(body: str = "", *, mail: str = "", listen: str = "127.0.0.1:30143",
           protocol: str = "imap", **kw):
    """The single merged server of ``mail { AUTH MAIL server { listen; protocol; BODY } }``."""
    return conf(mail_text(server_block(body, listen=listen, protocol=protocol), mail=mail),
                **kw).servers[0]


def error(text: str, **kw) -> str:
    """The str() of the ConfigError the text raises."""
    with pytest.raises(ConfigError) as info:
        conf(text, **kw)
    return str(info.value)


def parse_log_lines(output: str) -> list[tuple[str, str]]:
    """(level, message) of every error_log-format line of an output."""
    found = []
    for line in output.splitlines():
        match = LOG_LINE.match(line)
        if match:
            found.append((match.group(1), match.group(2)))
    return found


def nginx_test(
    directory: str, conf_name: str = "t.conf", *, load_mail_module: bool = True
) -> tuple[int, list[tuple[str, str]], str]:
    """Run ``nginx -t`` on DIR/conf_name; return (exit status, log lines, raw output).

    The mail module is loaded with ``-g`` unless the configuration loads it itself.
    """
    load = ["-g", "load_module %s;" % NGINX_MAIL_MODULE] if load_mail_module else []
    proc = subprocess.run(
        [NGINX, "-t", "-p", directory + "/", "-c", os.path.join(directory, conf_name), *load],
        capture_output=True, text=True, timeout=30,
    )
    return proc.returncode, parse_log_lines(proc.stderr), proc.stderr

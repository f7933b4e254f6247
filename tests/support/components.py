"""What the tests run besides Python — Dovecot, nginx, curl, openssl ... — and one way to
ask for it: ``require(name)`` in a test or fixture, or ``@pytest.mark.requires(name)``
on a test, class or module.

A missing component skips the test quietly, so that the suite runs where only part of
it is installed.  With ``MAILGATE_REQUIRE_ALL=1`` in the environment (``.ci/run`` sets
it) a missing component fails the test instead, naming the component and what installs
it: a broken install step cannot hide behind skips.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pytest

__all__ = [
    "COMPONENTS",
    "DOVECOT",
    "NGINX",
    "NGINX_MAIL_MODULE",
    "REQUIRE_ALL",
    "Component",
    "missing",
    "require",
]

REQUIRE_ALL = "MAILGATE_REQUIRE_ALL"
"""The environment variable that turns a missing component into a failure (value ``1``)."""

DOVECOT = "/usr/sbin/dovecot"
NGINX = "/usr/sbin/nginx"
NGINX_MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"

_INSTALLER = "tests/support/install-system-deps.sh"


@dataclass(frozen=True)
class Component:
    """Files (absolute paths) or commands (looked up on PATH) that must all be there,
    and the Debian packages that bring them."""

    needs: tuple[str, ...]
    packages: str

    def missing(self) -> str | None:
        """The first need that is not there, or None."""
        for need in self.needs:
            found = os.path.exists(need) if os.path.isabs(need) else shutil.which(need)
            if not found:
                return need
        return None


COMPONENTS: dict[str, Component] = {
    "dovecot": Component(
        (DOVECOT, "/usr/lib/dovecot/imap", "/usr/lib/dovecot/pop3"),
        "dovecot-core dovecot-imapd dovecot-pop3d",
    ),
    "nginx": Component((NGINX, NGINX_MAIL_MODULE), "nginx libnginx-mod-mail"),
    "curl": Component(("curl",), "curl"),
    "openssl": Component(("openssl",), "openssl"),
    "redis-server": Component(("redis-server",), "redis-server"),
    "haproxy": Component(("haproxy",), "haproxy"),
    "prometheus": Component(("prometheus", "promtool"), "prometheus"),
    "chromium": Component(("chromium",), "chromium"),
}
"""Every component a test may require, by name."""


def missing(name: str) -> str | None:
    """Why component ``name`` cannot run here (None when it can)."""
    component = COMPONENTS[name]
    need = component.missing()
    if need is None:
        return None
    return (f"{name} is not installed ({need} is missing): install the Debian packages "
            f"{component.packages} ({_INSTALLER} installs what the tests use)")


def require(name: str) -> None:
    """Skip the calling test when component ``name`` is missing; fail it instead when
    ``MAILGATE_REQUIRE_ALL=1``."""
    why = missing(name)
    if why is None:
        return
    if os.environ.get(REQUIRE_ALL) == "1":
        pytest.fail(f"{why}; {REQUIRE_ALL}=1: every component must be installed", pytrace=False)
    pytest.skip(why)

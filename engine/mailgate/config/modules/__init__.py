"""Directive tables, one module per nginx module, in nginx's module order.

The mail modules are merged in the order of ``MAIL_MODULES`` (the order of the
modules inside Debian's ngx_mail_module.so), so merge-time errors come out in the
order nginx reports them.
"""

from __future__ import annotations

from types import MappingProxyType

from mailgate.config.modules import (
    mail_auth_http,
    mail_core,
    mail_imap,
    mail_log,
    mail_pop3,
    mail_proxy,
    mail_realip,
    mail_smtp,
    mail_ssl,
    mail_status,
    main,
)

MAIN_MODULE = main
MAIL_MODULES = (
    mail_core,
    mail_ssl,
    mail_pop3,
    mail_imap,
    mail_smtp,
    mail_auth_http,
    mail_proxy,
    mail_realip,
    mail_log,  # mailgate's own modules, after nginx's
    mail_status,
)


def _all_directives():
    table = {}
    for module in (MAIN_MODULE, *MAIL_MODULES):
        for directive in module.DIRECTIVES:
            if directive.name in table:
                raise RuntimeError("directive %r declared twice" % directive.name)
            table[directive.name] = directive
    return MappingProxyType(table)


DIRECTIVES = _all_directives()

__all__ = ["DIRECTIVES", "MAIL_MODULES", "MAIN_MODULE"]

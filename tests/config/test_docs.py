"""README's directive table is the one generated from the registry."""

from __future__ import annotations

from pathlib import Path

from mailgate.config.docs import BEGIN_MARK, END_MARK, directive_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_generated_from_the_registry():
    text = README.read_text()
    start = text.index(BEGIN_MARK) + len(BEGIN_MARK)
    end = text.index(END_MARK)
    assert text[start:end].strip() == directive_table().strip(), (
        "README's directive table is stale: regenerate it with python -m mailgate.config.docs")


def test_every_ssl_module_directive_is_documented():
    table = directive_table()
    for name in ("ssl", "ssl_certificate", "ssl_certificate_key", "ssl_ciphers",
                 "ssl_client_certificate", "ssl_conf_command", "ssl_crl", "ssl_dhparam",
                 "ssl_ecdh_curve", "ssl_password_file", "ssl_prefer_server_ciphers",
                 "ssl_protocols", "ssl_session_cache", "ssl_session_ticket_key",
                 "ssl_session_tickets", "ssl_session_timeout", "ssl_trusted_certificate",
                 "ssl_verify_client", "ssl_verify_depth", "starttls"):
        assert "| `%s` |" % name in table

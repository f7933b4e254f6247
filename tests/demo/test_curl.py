"""curl's imap://, pop3:// and smtp:// URLs, as `mailgate demo` prints them."""

from __future__ import annotations

import subprocess

import pytest

from tests.demo.helpers import MULTIPART, SIMPLE

pytestmark = pytest.mark.requires("curl")

USER = "alice:wonder%20land"


def curl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], input=data,
                          capture_output=True, timeout=20, check=False)


def test_imap_fetch_by_uid(server):
    port = server.ports["imap"]
    result = curl(f"imap://{USER}@127.0.0.1:{port}/INBOX;UID=1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == SIMPLE
    result = curl(f"imap://{USER}@127.0.0.1:{port}/INBOX;UID=2;SECTION=2")
    assert result.stdout == b"AAECAw=="
    result = curl(f"imap://127.0.0.1:{port}/INBOX;MAILINDEX=2", "-u", "alice:wonder land",
                  "--login-options", "AUTH=PLAIN", "--sasl-ir")
    assert result.stdout == MULTIPART


def test_imap_list_search_and_custom_request(server):
    base = f"imap://{USER}@127.0.0.1:{server.ports['imap']}/"
    assert curl(base).stdout == b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
    assert curl(base + "INBOX?SUBJECT%20report").stdout == b"* SEARCH 2\r\n"
    # the SEARCH session's SELECT took \Recent away
    result = curl(base + "INBOX", "-X", "FETCH 1:* (UID FLAGS)")
    assert result.stdout == (b"* 1 FETCH (UID 1 FLAGS ())\r\n"
                             b"* 2 FETCH (UID 2 FLAGS ())\r\n"
                             b"* 3 FETCH (UID 3 FLAGS ())\r\n")


def test_imap_wrong_password(server):
    result = curl(f"imap://alice:bad@127.0.0.1:{server.ports['imap']}/INBOX;UID=1")
    assert result.returncode == 67          # CURLE_LOGIN_DENIED


def test_pop3_retr_and_list(server):
    port = server.ports["pop3"]
    result = curl(f"pop3://{USER}@127.0.0.1:{port}/1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == SIMPLE                  # dot-stuffed on the wire, exact here
    listing = curl(f"pop3://{USER}@127.0.0.1:{port}/").stdout
    assert listing.splitlines()[0] == b"1 %d" % len(SIMPLE)
    result = curl(f"pop3://127.0.0.1:{port}/2", "-u", "alice:wonder land",
                  "--login-options", "AUTH=PLAIN")
    assert result.stdout == MULTIPART


def test_smtp_upload(server, tmp_path):
    message = (b"From: carol@example.net\r\nTo: alice@example.com\r\nSubject: via curl\r\n\r\n"
               b".starts with a dot\r\n.\r\nlast line\r\n")
    path = tmp_path / "mail.eml"
    path.write_bytes(message)
    url = f"smtp://127.0.0.1:{server.ports['smtp']}"
    result = curl(url, "--mail-from", "carol@example.net", "--mail-rcpt", "alice@example.com",
                  "--mail-rcpt", "bob@example.com", "-T", str(path))
    assert result.returncode == 0, result.stderr
    assert server.store.messages("alice")[-1] == message
    assert server.store.messages("bob") == [message]
    result = curl(url, "--mail-from", "carol@example.net", "--mail-rcpt", "nobody@example.com",
                  "-T", str(path))
    assert result.returncode == 55 and b"550" in result.stderr     # CURLE_SEND_ERROR
    result = curl(url, "-u", "alice:wonder land", "--mail-from", "alice@example.com",
                  "--mail-rcpt", "bob@example.com", "-T", str(path))
    assert result.returncode == 0, result.stderr
    assert server.store.messages("bob") == [message, message]

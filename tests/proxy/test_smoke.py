"""First end-to-end checks of the embedded proxy with Dovecot and the auth server."""

from tests.support.clients import imap_fetch, imap_login, open_imap, open_pop3, pop3_retr
from tests.support.users import ALICE

IMAP = """
    server_name mx.test;
    auth_http $auth_http;
    ssl_certificate $rsa_cert; ssl_certificate_key $rsa_key;
    server { listen 127.0.0.1:${port_imap}; protocol imap; starttls on; }
    server { listen 127.0.0.1:${port_imaps} ssl; protocol imap; }
    server { listen 127.0.0.1:${port_pop3}; protocol pop3; }
"""


def test_imap_fetch(embedded, dovecot):
    embedded.start(IMAP)
    for name, security in (("imap", "plain"), ("imap", "starttls"), ("imaps", "ssl")):
        with open_imap(*embedded.address(name), security=security) as imap:
            imap_login(imap, ALICE)
            imap.select("INBOX", readonly=True)
            assert imap_fetch(imap, "1") == dovecot.delivered("alice")[0].data
            imap.logout()


def test_pop3_retr(embedded, dovecot):
    embedded.start(IMAP)
    pop = open_pop3(*embedded.address("pop3"))
    pop.user(ALICE.login)
    pop.pass_(ALICE.password)
    assert pop3_retr(pop, 1) == dovecot.stored_bytes(dovecot.delivered("alice")[0])
    pop.quit()

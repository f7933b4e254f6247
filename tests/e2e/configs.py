"""``mail {}`` bodies shared by several scenarios (``string.Template``, see
tests/support/proxy.py: ``${port_NAME}`` allocates a port)."""

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

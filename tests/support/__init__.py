"""Real-component test infrastructure for mailgate: ports, certificates, Dovecot,
an SMTP backend, an auth_http server, the nginx/mailgate proxy runner, and clients.
See README.md in this directory.
"""

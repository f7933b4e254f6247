"""Numbers shared by the pure-Python and the compiled command readers.

``pyx/_reader.pxi`` repeats these values as C constants; a test checks that the two
agree.
"""

# results of Reader.parse()
AGAIN = 0       # need more bytes
# A configuration is bytes to nginx; the loader keeps bytes that are not UTF-8 as
# surrogates, and a configured value goes on the wire as the bytes it was read as.
CONFIG_ENCODING = ("utf-8", "surrogateescape")

OK = 1          # a complete command: reader.command / reader.args
INVALID = 2     # a rejected line (already skipped up to its LF)
LITERAL = 3     # IMAP: a synchronizing literal was announced; reply "+ OK"

# IMAP commands
IMAP_LOGIN = 1
IMAP_LOGOUT = 2
IMAP_CAPABILITY = 3
IMAP_NOOP = 4
IMAP_STARTTLS = 5
IMAP_AUTHENTICATE = 6
IMAP_ID = 7          # RFC 2971; its parameter list is read as one raw argument

# POP3 commands
POP3_USER = 1
POP3_PASS = 2
POP3_APOP = 3
POP3_QUIT = 4
POP3_CAPA = 5
POP3_AUTH = 6
POP3_NOOP = 7
POP3_STLS = 8

# SMTP commands
SMTP_HELO = 1
SMTP_EHLO = 2
SMTP_AUTH = 3
SMTP_QUIT = 4
SMTP_NOOP = 5
SMTP_MAIL = 6
SMTP_RSET = 7
SMTP_RCPT = 8
SMTP_VRFY = 9
SMTP_EXPN = 10
SMTP_HELP = 11
SMTP_STARTTLS = 12

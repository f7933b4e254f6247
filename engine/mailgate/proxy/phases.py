"""The phases of a client session, in the order they come (``ClientSession.phase``)."""

PROXY_HEADER = "proxy-header"  # reading the PROXY protocol header
HANDSHAKE = "handshake"        # implicit TLS, or after STARTTLS
RESOLVING = "resolving"        # the SMTP client's name (smtp with a resolver)
PRE_AUTH = "pre-auth"          # the machine reads commands, asks the auth service
BACKEND = "backend"            # connecting and logging in to the backend
RELAY = "relay"                # bytes both ways
CLOSING = "closing"            # closed, or waiting for the client's close_notify

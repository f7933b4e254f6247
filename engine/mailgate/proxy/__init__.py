"""One session per client connection: accept, PROXY header, TLS, login, relay."""

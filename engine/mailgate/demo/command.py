"""``mailgate demo``: a working proxy on loopback, out of the box.

It starts the in-memory demo mail backend, a self-signed certificate (made on first
use and kept in the state directory), a built-in authentication with demo users in
place of ``auth_http``, and mailgate's proxy on IMAP, IMAPS, POP3, POP3S, SMTP and
SMTPS ports, then prints ``curl`` and ``openssl s_client`` commands that work
against it.  The configuration it serves is printed too: it is an ordinary nginx
``mail {}`` block.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import errno
import ipaddress
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from mailgate.auth import AuthFacts
from mailgate.config import Config, ConfigError
from mailgate.demo.server import DemoMailServer
from mailgate.demo.store import Mailstore
from mailgate.protocol.events import AuthFailed, AuthOK

__all__ = ["DEMO_USERS", "DemoSetup", "main", "make_certificate", "run"]

DEMO_USERS = (("alice", "wonderland"), ("bob", "builder"))
# listen ports by name: familiar numbers moved above 1024
DEFAULT_PORTS = {"imap": 1143, "imaps": 1993, "pop3": 1110, "pop3s": 1995, "smtp": 1025, "smtps": 1465}

CONFIG = """\
error_log stderr {level};
mail {{
    server_name mailgate.demo;
    ssl_certificate     {cert};
    ssl_certificate_key {key};
    ssl_session_cache   shared:DEMO:1m;
    imap_capabilities   IMAP4rev1 SASL-IR LITERAL+;
    smtp_capabilities   PIPELINING 8BITMIME "SIZE 10485760";

    server {{ listen {host}:{imap};       protocol imap; starttls on; }}
    server {{ listen {host}:{imaps} ssl;  protocol imap; }}
    server {{ listen {host}:{pop3};       protocol pop3; starttls on; }}
    server {{ listen {host}:{pop3s} ssl;  protocol pop3; }}
    server {{ listen {host}:{smtp};       protocol smtp; starttls on; }}
    server {{ listen {host}:{smtps} ssl;  protocol smtp; }}
}}
"""


def state_directory() -> Path:
    """Where the demo keeps its certificate ($XDG_STATE_HOME or ~/.local/state)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "mailgate" / "demo"


def make_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` and localhost, made once and reused."""
    cert, key = directory / "demo-cert.pem", directory / "demo-key.pem"
    if cert.exists() and key.exists():
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailgate demo")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for address in {host, "127.0.0.1", "::1"}:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            names.append(x509.DNSName(address))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def choose_ports(host: str, wanted: dict[str, int]) -> dict[str, int]:
    """The wanted ports if they are free, else free ones (0 asks for free ones)."""
    ports = {}
    for name, port in wanted.items():
        if port:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((host, port))
                except OSError as exc:
                    if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                        raise
                    port = 0
        ports[name] = port or _free_port(host)
    return ports


@dataclass
class DemoSetup:
    """Everything a running demo consists of (for the command and for tests)."""

    host: str
    ports: dict[str, int]
    cert: Path
    key: Path
    config_text: str
    store: Mailstore

    def commands(self) -> list[str]:
        """Client commands that work against this demo."""
        h, p, ca = self.host, self.ports, self.cert
        hu = "[%s]" % h if ":" in h else h
        user = "%s:%s" % DEMO_USERS[0]
        return [
            "curl --cacert %s 'imaps://%s:%d/INBOX;UID=1' -u %s" % (ca, hu, p["imaps"], user),
            "curl --cacert %s --ssl-reqd 'imap://%s:%d/INBOX;UID=1' -u %s" % (ca, hu, p["imap"], user),
            "curl --cacert %s pop3s://%s:%d/1 -u %s" % (ca, hu, p["pop3s"], user),
            "printf 'Subject: hi\\r\\n\\r\\nHello Bob.\\r\\n' | curl --cacert %s --ssl-reqd "
            "smtp://%s:%d -u %s --mail-from alice@mailgate.demo --mail-rcpt bob@mailgate.demo -T -"
            % (ca, hu, p["smtp"], user),
            "openssl s_client -connect %s:%d -CAfile %s -quiet" % (hu, p["imaps"], ca),
            "openssl s_client -connect %s:%d -starttls imap -CAfile %s -quiet" % (hu, p["imap"], ca),
        ]


def prepare(host: str = "127.0.0.1", *, directory: Path | None = None,
            ports: dict[str, int] | None = None, log_level: str = "info") -> DemoSetup:
    """Certificate, ports, configuration text and a store with the demo users."""
    cert, key = make_certificate(directory or state_directory(), host)
    ports = choose_ports(host, ports if ports is not None else DEFAULT_PORTS)
    listen_host = "[%s]" % host if ":" in host else host
    text = CONFIG.format(level=log_level, cert=cert, key=key, host=listen_host, **ports)
    store = Mailstore()
    for name, password in DEMO_USERS:
        store.add_user(name, password)
        store.deliver(name, (
            "From: mailgate demo <demo@mailgate.demo>\r\nTo: %s@mailgate.demo\r\n"
            "Subject: Welcome, %s\r\n\r\nThis message was fetched through mailgate's proxy.\r\n"
            % (name, name)).encode())
    return DemoSetup(host, ports, cert, key, text, store)


async def run(setup: DemoSetup, *, ready=None) -> None:
    """Serve the demo until cancelled; ``ready(setup)`` is called once it listens."""
    from mailgate.proxy.mailproxy import MailProxy

    config = Config.from_string(setup.config_text, name="<demo>", require_auth_http=False)
    async with DemoMailServer(setup.store, host=setup.host, hostname="backend.mailgate.demo") as backend:
        store = setup.store

        async def authenticate(facts: AuthFacts):
            # the demo users log in with their passwords; each protocol goes to its backend
            if facts.method == "plain" and store.check_password(facts.login, facts.password):
                return AuthOK(setup.host, backend.ports[facts.protocol])
            return AuthFailed(b"Invalid login or password")

        async with MailProxy(config, auth=authenticate) as proxy:
            if ready is not None:
                ready(setup)
            await proxy.serve_forever()


def _print_ready(setup: DemoSetup) -> None:
    out = sys.stdout
    out.write("mailgate demo is running; the proxy serves this configuration:\n\n")
    out.write("".join("    " + line + "\n" for line in setup.config_text.splitlines()))
    out.write("\nusers: %s\n" % ", ".join("%s (password %s)" % u for u in DEMO_USERS))
    out.write("\ntry:\n\n%s\n\npress Ctrl-C to stop\n" % "\n".join("  " + c for c in setup.commands()))
    out.flush()


def main(argv: list[str]) -> int:
    """``mailgate demo [--host ADDRESS] [--dir DIRECTORY] [--any-ports]``."""
    parser = argparse.ArgumentParser(prog="mailgate demo", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the self-signed certificate is kept (default: %s)" % state_directory())
    parser.add_argument("--any-ports", action="store_true", help="use free ports instead of 1143, 1993, ...")
    args = parser.parse_args(argv)
    wanted = {name: 0 for name in DEFAULT_PORTS} if args.any_ports else DEFAULT_PORTS
    try:
        setup = prepare(args.host, directory=args.dir, ports=wanted)
    except (OSError, ConfigError) as exc:
        sys.stderr.write("mailgate demo: %s\n" % exc)
        return 1
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(run(setup, ready=_print_ready))
    except KeyboardInterrupt:
        pass
    except (OSError, ConfigError) as exc:
        sys.stderr.write("mailgate demo: %s\n" % exc)
        return 1
    return 0

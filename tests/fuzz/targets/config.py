"""Target ``config``: the nginx configuration lexer, the directive handlers and the merge.

A configuration is the operator's, not a client's, but the contract is strict all the
same: whatever the text, loading it gives a ``Config`` or raises ``ConfigError`` with
nginx's wording, never another exception and never a hang.  A loaded configuration
must also be usable: its TLS contexts build (or fail with a ``ConfigError``, as
``mailgate -t`` reports them), its listen sockets group, and each server's machine
greets and lists its capabilities.

Input: byte 0 chooses the entry point (bit 0: ``-g`` text for the lexer alone, else
``Config.from_string``; bit 1: ``require_auth_http``); the rest is the text, decoded as
the loader decodes files (UTF-8 with surrogate escapes).

The loader may open files (``include``, ``ssl_password_file``, ticket keys ...) and
resolve host names (``listen``, ``auth_http``, ``resolver``).  While it runs, an audit
hook (:func:`sandbox`) confines it: files open only inside a small fixture directory
(the prefix, with include files, a password file, a ticket key and ``pki/``:
certificates, keys, a CA and a CRL) or where Python imports from, directories list only
there, and only ``localhost`` and address literals resolve.  OpenSSL opens the TLS
files itself, unseen by the hook: the contexts are built only when each of those files
is in the fixture or missing, and the shared caches ask for at most ``ZONE_LIMIT``.
A fuzzed ``include /dev/zero;`` or ``listen example.com:25`` thus meets an ordinary
failure (EACCES, host not found), which must come out as a ``ConfigError``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import ipaddress
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator

from mailgate.config import Config, ConfigError
from mailgate.config.lexer import ENCODING, tokenize
from mailgate.protocol import SERVERS
from mailgate.tls import SessionZones, build_contexts

from tests.support.certs import KEY_PASSWORD, make_pki

MAX_LEN = 8192

#: none: the bugs this target found are fixed (84d9c4c: a path ends at its first NUL byte,
#: as nginx's C strings; configured bytes that are not UTF-8 go on the wire as read), and
#: their inputs in regressions/config replay them
KNOWN_BUGS = ()

#: the fixture directory's files (relative names resolve against it)
FILES = {
    "include.conf": b"worker_processes 2;\n",
    "servers.conf": b"server { listen 127.0.0.1:1143; protocol imap; }\n",
    "keys.pass": b"wrong\n" + KEY_PASSWORD.encode() + b"\n",
    "ticket.key": bytes(range(48)),
    "empty.conf": b"",
}

DICTIONARY = (
    b"mail {", b"server {", b"}", b";", b"listen ", b"127.0.0.1:143", b"[::1]:110",
    b"unix:/tmp/x.sock", b"localhost:25", b"protocol ", b"imap", b"pop3", b"smtp",
    b"auth_http ", b"127.0.0.1:9000/auth", b"server_name ", b"starttls ", b"only", b"on",
    b"off", b"ssl", b"proxy_protocol", b"ssl_certificate ", b"ssl_certificate_key ",
    b"ssl_password_file keys.pass", b"ssl_session_ticket_key ticket.key",
    b"ssl_session_cache shared:SSL:1m", b"include ", b"include.conf", b"servers.conf",
    b"*.conf", b"resolver ", b"set_real_ip_from ", b"10.0.0.0/8", b"imap_capabilities ",
    b"smtp_auth ", b"none", b"cram-md5", b"timeout ", b"1h 30m", b"10ms", b"4k",
    b"worker_processes ", b"auto", b"events {", b"http {", b"error_log ", b"stderr",
    b"\"", b"'", b"\\", b"$", b"${", b"#", b"\n", b"pki/ecdsa.pem", b"pki/ecdsa.key",
    b"pki/rsa.pem", b"pki/rsa-enc.key", b"pki/client-ca.pem", b"pki/client-crl.pem",
    b"data:", b"ssl_verify_client ", b"optional_no_ca", b"ssl_ciphers ", b"HIGH:!aNULL",
    b"ssl_ecdh_curve ", b"X25519:prime256v1", b"ssl_conf_command ", b"Options",
    b"ssl_protocols ", b"TLSv1.2", b"TLSv1.3", b"ssl_session_tickets ", b"ssl_crl ",
    b"ssl_client_certificate ", b"ssl_trusted_certificate ", b"ssl_dhparam ",
)

#: the most shared session cache memory a configuration may ask for here: zones are
#: mapped (and initialised) when the TLS contexts are built
ZONE_LIMIT = 16 << 20


@functools.cache
def fixture_dir() -> str:
    """The prefix directory with :data:`FILES`, made once per process: in the runner's
    work directory (``MAILGATE_FUZZ_WORK``), else a temporary one removed at exit."""
    work = os.environ.get("MAILGATE_FUZZ_WORK")
    if work:
        path = os.path.join(work, "config-prefix")
        os.makedirs(path, exist_ok=True)
    else:
        path = tempfile.mkdtemp(prefix="mailgate-fuzz-config-")
        atexit.register(shutil.rmtree, path, True)
    for name, data in FILES.items():
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
    pki = make_pki(os.path.join(path, "pki", "made"))
    # the names the seeds use (rsa-enc.key: KEY_PASSWORD, in keys.pass)
    for name, made in (("ecdsa.pem", pki.server_ecdsa.cert), ("ecdsa.key", pki.server_ecdsa.key_file),
                       ("rsa.pem", pki.server_rsa.cert), ("rsa-enc.key", pki.server_rsa_encrypted_key),
                       ("client-ca.pem", pki.ca.cert), ("client-crl.pem", pki.crl_ca)):
        shutil.copyfile(made, os.path.join(path, "pki", name))
    return path


_active: int | None = None  # the thread loading a configuration in the sandbox


def _inside(path, roots: tuple[str, ...]) -> bool:
    if isinstance(path, int):
        return True  # an open file descriptor
    real = os.path.realpath(os.fsdecode(path))
    return any(real == root or real.startswith(root + os.sep) for root in roots)


def _audit(event: str, args: tuple) -> None:
    # other threads of the process (a test's server) are never confined
    if _active != threading.get_ident():
        return
    if event in ("open", "os.scandir", "os.listdir"):
        roots = (fixture_dir(),) + tuple(os.path.realpath(p) for p in sys.path if p)
        if args and args[0] is not None and not _inside(args[0], roots):
            raise PermissionError(13, "Permission denied (fuzz sandbox)")
    elif event == "socket.getaddrinfo":
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode("latin-1")
        if isinstance(host, str):
            host = host.partition("\0")[0]  # what the C library is given
        if host not in (None, "localhost"):
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


@functools.cache
def _install() -> None:
    sys.addaudithook(_audit)  # a hook stays for the process: it is inert when inactive


@contextlib.contextmanager
def sandbox() -> Iterator[str]:
    """Confine file access and name resolution while the loader runs; the prefix."""
    global _active
    _install()
    prefix = os.path.join(fixture_dir(), "")
    _active = threading.get_ident()
    try:
        yield prefix
    finally:
        _active = None


_CAPABILITIES = {"imap": b"a1 CAPABILITY\r\n", "pop3": b"CAPA\r\nAUTH\r\n",
                 "smtp": b"EHLO client.test\r\n"}


def _use(config: Config) -> None:
    """What the server does with a loaded configuration: group its sockets, greet a
    client and list the capabilities on each server."""
    assert config.shared_zones is not None
    for listen_socket in config.listen_sockets():
        assert listen_socket.listen.sockaddr
        assert listen_socket.server_for("127.0.0.1") in config.servers
    for server in config.servers:
        assert server.tls_enabled in (True, False)
        machine = SERVERS[server.protocol](server, rand=lambda: 1, now=lambda: 2)
        machine.start()
        machine.receive_data(_CAPABILITIES[server.protocol])


def _confined(server, conf_prefix: str) -> bool:
    """Whether every file OpenSSL would open for ``server`` is in the fixture directory
    (or does not exist): OpenSSL opens them itself, out of the audit hook's sight."""
    # a command's value may be a file, taken from the configuration's directory
    commands = [os.path.join(conf_prefix, value) for _, value in server.ssl_conf_command]
    values = [*server.ssl_certificate, *server.ssl_certificate_key, server.ssl_dhparam,
              server.ssl_client_certificate, server.ssl_trusted_certificate, server.ssl_crl,
              *server.ssl_session_ticket_key, *commands]
    for value in values:
        if not value or value.startswith("data:"):
            continue
        if value.startswith(("engine:", "store:")):
            return False  # an engine library, a store URI: anything
        path = value.partition("\0")[0]  # a C string
        if os.path.exists(path) and not _inside(path, (fixture_dir(),)):
            return False
    return True


def _build_tls(config: Config) -> None:
    """What ``mailgate -t`` and a start do next: the TLS contexts, their shared caches."""
    servers = [server for server in config.servers if server.tls_enabled]
    if not servers or not all(_confined(server, config.conf_prefix) for server in servers):
        return
    if sum(zone.size for zone in config.shared_zones) > ZONE_LIMIT:
        return
    zones = SessionZones()
    try:
        zones.configure(config)
        build_contexts(config, zones)
    finally:
        zones.close()


def one_input(data: bytes) -> None:
    """Load ``data`` as a configuration; ConfigError is the only failure allowed."""
    if not data:
        return
    text = data[1:].decode(*ENCODING)
    with sandbox() as prefix:
        try:
            if data[0] & 1:
                statements = list(tokenize(text, "command line", parameter=True))
                assert len(statements) <= len(text) + 1
                return
            config = Config.from_string(text, prefix=prefix, hostname="mx.test",
                                        require_auth_http=bool(data[0] & 2))
            _build_tls(config)
        except ConfigError as exc:
            assert isinstance(exc.message, str) and exc.message
            return
    _use(config)

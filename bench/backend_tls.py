"""CPU per IMAP login session with the backend and auth server legs encrypted.

    python bench/backend_tls.py                 # 5 rounds of every variant (~3 min)
    python bench/backend_tls.py --rounds 3 --count 300

One mailgate (``python -m mailgate``, one worker, ``daemon off``) serves one IMAPS
``server {}`` per variant; each variant's own auth_http server sends its sessions to
the same Dovecot (TLS on, not required), and the load generator of ``compare.py``
(``loadgen.py imap``: TLS 1.3 to the proxy, LOGIN, SELECT, FETCH, LOGOUT) runs the
same sessions against each, the order rotating between rounds.  The proxy's CPU per
session is the scheduler's run time of its processes (``compare.cpu_seconds``) over
the sessions of a round; the table gives the median over the rounds and its ratio to
the plaintext variant:

* ``plain``: the backend in the clear, auth_http as nginx (the reference);
* ``tls``, ``tls-noreuse``: ``proxy_ssl on`` to Dovecot's IMAPS port, with and
  without ``proxy_ssl_session_reuse``;
* ``starttls``, ``starttls-noreuse``: ``proxy_starttls on`` to Dovecot's IMAP port;
* ``keepalive``: the backend in the clear, ``auth_http_keepalive 8``;
* ``all``: ``proxy_ssl on`` with reuse and ``auth_http_keepalive 8``;
* ``https``, ``https-keepalive``: the backend in the clear, ``auth_http https://``
  (verified), without and with ``auth_http_keepalive 8``.

Goals (bench/RESULTS.md): backend TLS with reuse adds at most 25 % to a login
session; keep-alive saves CPU per login.  Loopback only; every run bounded in
sessions and seconds.  Needs root (Dovecot), as ``compare.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.compare import SETTLE, BenchProxy, Figure, cpu_seconds, fmt_cpu, loadgen  # noqa: E402
from tests.support.auth_http import AuthHttpServer, DefaultPolicy  # noqa: E402
from tests.support.certs import make_pki  # noqa: E402
from tests.support.dovecot import Dovecot  # noqa: E402
from tests.support.messages import make_message  # noqa: E402
from tests.support.ports import PortAllocator  # noqa: E402
from tests.support.proxy import IMPLEMENTATIONS  # noqa: E402
from tests.support.users import ALICE, DEFAULT_USERS  # noqa: E402

AUTH_HTTPS = "auth_http_ssl_trusted_certificate $ca; auth_http_ssl_name mx.test;"
#: variant -> (Dovecot port attribute, the server's directives); the https variants' auth
#: servers serve HTTPS
HTTPS = ("https", "https-keepalive")
VARIANTS = {
    "plain": ("imap_port", ""),
    "tls": ("imaps_port", "proxy_ssl on;"),
    "tls-noreuse": ("imaps_port", "proxy_ssl on; proxy_ssl_session_reuse off;"),
    "starttls": ("imap_port", "proxy_starttls on;"),
    "starttls-noreuse": ("imap_port", "proxy_starttls on; proxy_ssl_session_reuse off;"),
    "keepalive": ("imap_port", "auth_http_keepalive 8;"),
    "all": ("imaps_port", "proxy_ssl on; auth_http_keepalive 8;"),
    "https": ("imap_port", AUTH_HTTPS),
    "https-keepalive": ("imap_port", AUTH_HTTPS + " auth_http_keepalive 8;"),
}
BACKEND_TLS = ("proxy_ssl_verify on; proxy_ssl_verify_depth 2; "
               "proxy_ssl_trusted_certificate $ca; proxy_ssl_name mx.test;")


def mail_block(auth: dict[str, AuthHttpServer]) -> str:
    servers = "\n".join(
        f"    server {{ listen 127.0.0.1:${{port_{name.replace('-', '_')}}} ssl; protocol imap; "
        f"auth_http {auth[name].url}; {directives} }}"
        for name, (_, directives) in VARIANTS.items())
    return f"""
    server_name mx.test;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $ecdsa_cert;
    ssl_certificate_key $ecdsa_key;
    ssl_session_cache shared:BENCH:10m;
    {BACKEND_TLS}
{servers}
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=400, help="sessions per round (at most)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per round (at most)")
    parser.add_argument("--only", default="", help="variants, comma-separated")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (Dovecot's mail processes run as nobody)")
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    if "plain" not in names:
        names.insert(0, "plain")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="mailgate-bench-tls-") as tmp:
        directory = Path(tmp)
        ports = PortAllocator()
        pki = make_pki(directory / "pki")
        dovecot = Dovecot(directory / "dovecot", ports, users=DEFAULT_USERS,
                          tls=(pki.server_rsa.cert, pki.server_rsa.key_file))
        dovecot.deliver(ALICE.login, make_message("hello alice", "Hello, Alice.\r\n" * 40))
        dovecot.start()
        tls = (str(pki.server_rsa.cert), str(pki.server_rsa.key_file))
        auth = {name: AuthHttpServer(ports, DefaultPolicy(
                    DEFAULT_USERS, {"imap": (dovecot.host, getattr(dovecot, port))}),
                    tls=tls if name in HTTPS else None)
                for name, (port, _) in VARIANTS.items()}
        for server in auth.values():
            server.start()
        values = {"ecdsa_cert": pki.server_ecdsa.cert, "ecdsa_key": pki.server_ecdsa.key_file,
                  "ca": pki.ca.cert}
        proxy = BenchProxy(IMPLEMENTATIONS["mailgate"], directory / "mailgate", ports, values=values)
        try:
            proxy.start(mail_block(auth))
            bench = SimpleNamespace(proxies={"mailgate": proxy}, pki=pki)
            figures = {name: Figure(name, name, "imap", name.replace("-", "_"), "session",
                                    count=args.count, duration=args.duration)
                       for name in names}
            for figure in figures.values():  # warm-up
                loadgen(bench, "mailgate", figure, count=max(4, args.count // 10))
            per_session: dict[str, list[float]] = {name: [] for name in names}
            for r in range(args.rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for name in order:
                    pgid = proxy.master_pid
                    run0, _ = cpu_seconds(pgid)
                    result = loadgen(bench, "mailgate", figures[name])
                    time.sleep(SETTLE)
                    run1, _ = cpu_seconds(pgid)
                    if result["errors"]:
                        raise SystemExit(f"{name}: {result['errors']} errors: {result['error_samples']}")
                    per_session[name].append((run1 - run0) / result["ops"])
                    log(f"  round {r + 1} {name:17s} sessions={result['ops']:4d} "
                        f"cpu/session={fmt_cpu(per_session[name][-1], 'session')}")
            problems = proxy.problems()
        finally:
            proxy.stop()
            for server in auth.values():
                server.stop()
            dovecot.stop()
        connections = {name: server.accepted for name, server in auth.items()}
    base = statistics.median(per_session["plain"])
    print("| variant | CPU per session (median) | vs plain | auth connections |")
    print("| --- | --- | --- | --- |")
    for name in names:
        median = statistics.median(per_session[name])
        print(f"| {name} | {fmt_cpu(median, 'session')} | {median / base - 1:+.0%} "
              f"| {connections[name]} |")
    if problems:
        print("problems in the log:", *problems, sep="\n", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

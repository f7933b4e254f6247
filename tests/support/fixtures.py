"""pytest fixtures of the real-component test infrastructure (registered as a plugin
by tests/conftest.py).  See tests/support/README.md for what each offers.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator

import pytest

from .auth_http import AuthHttpServer, DefaultPolicy
from .certs import PKI, make_pki
from .clients import client_context
from .components import require
from .dovecot import Dovecot
from .embedded import EmbeddedProxy
from .messages import DOT_MESSAGE, EIGHT_BIT_MESSAGE, big_message, make_message
from .ports import PortAllocator
from .proxy import IMPLEMENTATIONS, MailProxy
from .smtp_backend import SmtpBackend
from .users import ALICE, BOB, BULK, DEFAULT_USERS, JOERG, MailUser


def default_seed() -> dict[str, tuple[bytes, ...]]:
    """What the session's Dovecot holds, per user, in INBOX order."""
    return {
        ALICE.login: (
            make_message("hello alice", "Hello, Alice.\r\n"),
            DOT_MESSAGE,
            EIGHT_BIT_MESSAGE,
        ),
        BOB.login: (make_message("hello bob", "Hello, Bob.\r\n"),),
        JOERG.login: (EIGHT_BIT_MESSAGE,),
        BULK.login: (big_message(10 * 1024 * 1024),),
    }


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--mail-proxy",
        default="nginx,mailgate",
        help="comma-separated proxy implementations the `proxy` fixture runs against "
        f"(of {', '.join(IMPLEMENTATIONS)}; default: all)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # aiosmtpd warns about its own use of a deprecated attribute on every AUTH.
    config.addinivalue_line("filterwarnings", "ignore:Session.login_data is deprecated")
    config.addinivalue_line(
        "markers",
        "requires(*components): the test runs these (tests/support/components.py): skipped "
        "without them, failed without them under MAILGATE_REQUIRE_ALL=1")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # before the fixtures: a missing component starts nothing
    for marker in item.iter_markers("requires"):
        for name in marker.args:
            require(name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "proxy_impl" in metafunc.fixturenames:
        names = [
            n.strip() for n in metafunc.config.getoption("--mail-proxy").split(",") if n.strip()
        ]
        unknown = set(names) - set(IMPLEMENTATIONS)
        if unknown:
            raise pytest.UsageError(f"--mail-proxy: unknown implementation(s) {sorted(unknown)}")
        metafunc.parametrize("proxy_impl", names)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    # Kept on the item so fixture teardowns can tell whether the test failed.
    report = yield
    setattr(item, f"_mailgate_report_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"_mailgate_report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


# -- building blocks -------------------------------------------------------------------


@pytest.fixture(scope="session")
def port_allocator() -> Iterator[PortAllocator]:
    """Free loopback ports, locked against parallel test runs."""
    allocator = PortAllocator()
    yield allocator
    allocator.release_all()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """The test PKI (CA, intermediate, RSA/ECDSA servers, clients, CRLs) as files."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def tls_client_context(pki: PKI) -> ssl.SSLContext:
    """A client SSLContext trusting the test root CA."""
    return client_context(pki)


@pytest.fixture(scope="session")
def mail_users() -> tuple[MailUser, ...]:
    """The users known to Dovecot, the SMTP backend and the default auth policy."""
    return DEFAULT_USERS


# -- backends ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot(
    tmp_path_factory: pytest.TempPathFactory, port_allocator: PortAllocator
) -> Iterator[Dovecot]:
    """The session's Dovecot (IMAP + POP3), seeded with :func:`default_seed`.

    Shared by the whole session: read, do not change its mailboxes (use
    ``dovecot_factory`` for a private instance).
    """
    require("dovecot")
    instance = Dovecot(tmp_path_factory.mktemp("dovecot"), port_allocator)
    for login, messages in default_seed().items():
        for data in messages:
            instance.deliver(login, data)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def dovecot_factory(
    tmp_path_factory: pytest.TempPathFactory, port_allocator: PortAllocator
) -> Iterator[Callable[..., Dovecot]]:
    """Make private Dovecot instances (not started; empty mailboxes); all stopped at teardown.

    ``dovecot_factory(users=..., tls=(chain, key), settings={...})``
    """
    require("dovecot")
    made: list[Dovecot] = []

    def make(**kwargs: object) -> Dovecot:
        instance = Dovecot(tmp_path_factory.mktemp("dovecot"), port_allocator, **kwargs)  # type: ignore[arg-type]
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.stop()


@pytest.fixture
def smtp_backend(port_allocator: PortAllocator) -> Iterator[SmtpBackend]:
    """A fresh recording SMTP backend (aiosmtpd + XCLIENT) for this test."""
    backend = SmtpBackend(port_allocator)
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture
def auth_policy(
    dovecot: Dovecot, smtp_backend: SmtpBackend, mail_users: tuple[MailUser, ...]
) -> DefaultPolicy:
    """The default auth_http policy: known users to Dovecot (IMAP/POP3) or the SMTP backend."""
    return DefaultPolicy(
        mail_users,
        {
            "imap": (dovecot.host, dovecot.imap_port),
            "pop3": (dovecot.host, dovecot.pop3_port),
            "smtp": (smtp_backend.host, smtp_backend.port),
        },
    )


@pytest.fixture
def auth_server(
    port_allocator: PortAllocator, auth_policy: DefaultPolicy
) -> Iterator[AuthHttpServer]:
    """The auth_http server with :func:`auth_policy`; set ``.policy`` to change answers."""
    server = AuthHttpServer(port_allocator, auth_policy)
    server.start()
    yield server
    server.stop()
    if server.errors:
        raise AssertionError(f"the auth_http policy raised: {server.errors!r}")


# -- proxies -------------------------------------------------------------------------------


@pytest.fixture
def proxy_values(pki: PKI, auth_server: AuthHttpServer) -> dict[str, object]:
    """Template values every proxy config may use (``$auth_http``, ``$rsa_cert``, ...)."""
    return {
        "auth_http": auth_server.url,
        "rsa_cert": pki.server_rsa.cert,
        "rsa_key": pki.server_rsa.key_file,
        "rsa_pem": pki.server_rsa.pem,
        "rsa_key_encrypted": pki.server_rsa_encrypted_key,
        "ecdsa_cert": pki.server_ecdsa.cert,
        "ecdsa_key": pki.server_ecdsa.key_file,
        "ecdsa_pem": pki.server_ecdsa.pem,
        "ecdsa_key_encrypted": pki.server_ecdsa_encrypted_key,
        "password_file": pki.password_file,
        "ca": pki.ca.cert,
        "ca_bundle": pki.ca_bundle,
        "crl": pki.crl_all,
        "crl_ca": pki.crl_ca,
        "crl_intermediate": pki.crl_intermediate,
        "ticket_key_48": pki.ticket_key_48,
        "ticket_key_80": pki.ticket_key_80,
    }


@pytest.fixture
def proxy_factory(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    port_allocator: PortAllocator,
    proxy_values: dict[str, object],
) -> Iterator[Callable[[str], MailProxy]]:
    """Make (not start) proxies by implementation name; requires what each runs on.

    At teardown every proxy is stopped; a log with [alert]/[emerg] lines or a Python
    traceback fails the test unless ``proxy.tolerate_problems`` was set; when the test
    failed, each proxy's config and error log are printed.
    """
    made: list[MailProxy] = []

    def make(name: str) -> MailProxy:
        implementation = IMPLEMENTATIONS[name]
        for component in implementation.requires:
            require(component)
        made.append(
            MailProxy(
                implementation,
                tmp_path_factory.mktemp(f"proxy-{name}"),
                port_allocator,
                values=proxy_values,
            )
        )
        return made[-1]

    yield make
    problems = []
    for proxy in made:
        proxy.stop()
        if _failed(request):
            print(f"===== {proxy.name} =====\n{proxy.diagnostics()}")
        if not proxy.tolerate_problems:
            problems += [f"{proxy.name}: {line}" for line in proxy.problems()]
    if problems:
        raise AssertionError("problems in the proxy logs:\n" + "\n".join(problems))


@pytest.fixture
def embedded_factory(
    tmp_path_factory: pytest.TempPathFactory,
    port_allocator: PortAllocator,
    proxy_values: dict[str, object],
) -> Iterator[Callable[..., EmbeddedProxy]]:
    """Make in-process proxies (``EmbeddedProxy``, not started; ``loop_factory=`` to
    choose the loop).  At teardown each is stopped; its log's [alert]/[emerg] lines,
    tracebacks and exceptions that reached its loop fail the test unless
    ``tolerate_problems`` was set."""
    made: list[EmbeddedProxy] = []

    def make(**kwargs: object) -> EmbeddedProxy:
        directory = tmp_path_factory.mktemp("embedded")
        made.append(EmbeddedProxy(directory, port_allocator, proxy_values, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    problems = []
    for proxy in made:
        proxy.stop()
        if not proxy.tolerate_problems:
            problems += proxy.problems()
    if problems:
        raise AssertionError("problems in the embedded proxy:\n" + "\n".join(problems))


@pytest.fixture
def embedded(embedded_factory: Callable[..., EmbeddedProxy]) -> EmbeddedProxy:
    """mailgate's ``MailProxy`` in this process (not started), see ``embedded_factory``."""
    return embedded_factory()


@pytest.fixture
def proxy(proxy_impl: str, proxy_factory: Callable[[str], MailProxy]) -> MailProxy:
    """The proxy under test, once per implementation (``--mail-proxy``); not started."""
    return proxy_factory(proxy_impl)


@pytest.fixture
def nginx(proxy_factory: Callable[[str], MailProxy]) -> MailProxy:
    """Debian's nginx, the reference proxy (not started)."""
    return proxy_factory("nginx")


@pytest.fixture
def proxy_pair(proxy_factory: Callable[[str], MailProxy]) -> tuple[MailProxy, MailProxy]:
    """``(nginx, mailgate)``, neither started, for conformance tests that run one
    script against both and compare transcripts."""
    return proxy_factory("nginx"), proxy_factory("mailgate")

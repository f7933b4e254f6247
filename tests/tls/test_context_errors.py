"""TLS configuration errors: what building a context reports, in nginx's
words, compared with what the installed nginx says for the same file."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from mailgate.tls import ConfigError, SessionZones, TLSContext, build_contexts

from tests.support import configs
from tests.support.certs import KEY_PASSWORD
from tests.support.components import NGINX, NGINX_MAIL_MODULE, require
from tests.support.configs import certificates, mail_text, server_block
from tests.tls.conf import load

def error_of(directory, body: str, names=("ecdsa",)) -> str:
    config = load(directory, body if not names else certificates(PKI_REF[0], *names) + body)
    with pytest.raises(ConfigError) as info:
        build_contexts(config)
    return str(info.value)


def nginx_error(directory, body: str) -> str:
    """The [emerg] text of ``nginx -t`` for the same server body."""
    directory = os.path.join(str(directory), "nginx")
    os.makedirs(os.path.join(directory, "logs"), exist_ok=True)
    with open(os.path.join(directory, "nginx.conf"), "w") as f:
        f.write(mail_text(server_block(body, listen="127.0.0.1:1 ssl"),
                          main="events {}\nerror_log stderr;\npid nginx.pid;"))
    proc = subprocess.run(
        [NGINX, "-t", "-p", directory + "/", "-c", "nginx.conf",
         "-g", f"load_module {NGINX_MAIL_MODULE};"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30, check=False,
    )
    match = re.search(r"\[emerg\] \d+#\d+: (.*)", proc.stderr)
    assert match, proc.stderr
    return match.group(1)


PKI_REF: list = []


@pytest.fixture(autouse=True)
def _pki(pki):
    PKI_REF[:] = [pki]


def broken(pki, tmp_path):
    """name -> (server body, certificate pairs given first, our message).

    ``None`` as message: the same text nginx 1.22 prints (checked live); a
    pair: the start and the end of the message."""
    junk = tmp_path / "junk.pem"
    junk.write_text("junk\n")
    missing = str(tmp_path / "missing.pem")
    enc = f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key {pki.server_rsa_encrypted_key};"
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("nope\nstill not\n")
    nofile = f"(SSL: error:80000002:system library::No such file or directory:calling fopen({missing}, r) " \
             "error:10000080:BIO routines::no such file)"
    return {
        "key mismatch": (
            f"ssl_certificate {pki.server_ecdsa.cert}; ssl_certificate_key {pki.server_other.key_file};", (), None),
        "junk certificate": (f"ssl_certificate {junk}; ssl_certificate_key {pki.server_rsa.key_file};", (), None),
        "missing certificate": (
            f"ssl_certificate {missing}; ssl_certificate_key {pki.server_rsa.key_file};", (), None),
        "junk key": (f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key {junk};", (), None),
        "missing key": (f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key {missing};", (), None),
        "bad curve": ("ssl_ecdh_curve foo:bar;", ("ecdsa",), None),
        "bad ciphers": ("ssl_ciphers NOPE;", ("ecdsa",), None),
        "unknown conf command": ("ssl_conf_command Foo bar;", ("ecdsa",), None),
        "bad conf command value": ("ssl_conf_command Options -Foo;", ("ecdsa",), None),
        "junk dhparam": (f"ssl_dhparam {junk};", ("ecdsa",), None),
        "missing dhparam": (f"ssl_dhparam {missing};", ("ecdsa",), None),
        # current nginx loads CA files and CRLs itself (1.22 went through
        # SSL_CTX_load_verify_locations / X509_LOOKUP_load_file)
        "junk client CA": (
            f"ssl_verify_client on; ssl_client_certificate {junk};", ("ecdsa",),
            (f'cannot load certificate "{junk}": PEM_read_bio_X509_AUX() failed (SSL: error:0480006C:'
             "PEM routines::no start line:Expecting: TRUSTED CERTIFICATE)")),
        "missing trusted CA": (
            f"ssl_verify_client on; ssl_trusted_certificate {missing};", ("ecdsa",),
            f'cannot load certificate "{missing}": BIO_new_file() failed {nofile}'),
        "junk CRL": (
            f"ssl_verify_client on; ssl_client_certificate {pki.ca.cert}; ssl_crl {junk};",
            ("ecdsa",),
            (f'cannot load CRL "{junk}": PEM_read_bio_X509_CRL() failed (SSL: error:0480006C:'
             "PEM routines::no start line:Expecting: X509 CRL)")),
        "missing CRL": (
            f"ssl_verify_client on; ssl_client_certificate {pki.ca.cert}; ssl_crl {missing};",
            ("ecdsa",), f'cannot load CRL "{missing}": BIO_new_file() failed {nofile}'),
        # current nginx names the whole value (1.22 cut it at the second colon);
        # the middle of the text names the platform's engine directory
        "missing engine": (
            f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key engine:nosuch:key1;", (),
            (('cannot load certificate key "engine:nosuch:key1": ENGINE_by_id() failed (SSL: '
              "error:12800067:DSO support routines::could not load the shared library:filename("),
             (" error:13000084:engine routines::dso not found error:13000074:engine routines::"
              "no such engine:id=nosuch)"))),
        "engine syntax": (
            f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key engine:nosuch;", (), None),
        # nginx prints data: values in full, which may be a private key
        "junk data certificate": (
            f"ssl_certificate data:junk; ssl_certificate_key {pki.server_rsa.key_file};", (),
            ('cannot load certificate "data:...": PEM_read_bio_X509_AUX() failed (SSL: error:0480006C:'
             "PEM routines::no start line:Expecting: TRUSTED CERTIFICATE)")),
        "junk data key": (
            f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key data:junk;", (),
            ('cannot load certificate key "data:...": PEM_read_bio_PrivateKey() failed (SSL: '
             "error:1E08010C:DECODER routines::unsupported:No supported data to decode. Input type: PEM)")),
        "wrong passwords": (enc + f" ssl_password_file {wrong};", (), None),
    }


CASES = [
    "key mismatch", "junk certificate", "missing certificate", "junk key", "missing key", "bad curve",
    "bad ciphers", "unknown conf command", "bad conf command value", "junk dhparam", "missing dhparam",
    "junk client CA", "missing trusted CA", "junk CRL", "missing CRL", "missing engine", "engine syntax",
    "junk data certificate", "junk data key", "wrong passwords",
]


@pytest.mark.parametrize("case", CASES)
def test_error_message(tmp_path, pki, case):
    body, names, expected = broken(pki, tmp_path)[case]
    message = error_of(tmp_path, body, names)
    if isinstance(expected, tuple):
        assert message.startswith(expected[0]) and message.endswith(expected[1])
    elif expected is not None:
        assert message == expected
    else:
        assert message.startswith(("cannot load", "SSL_CTX_", "SSL_CONF_cmd(", "PEM_read_bio_", "BIO_new_file("))


@pytest.mark.nginx
@pytest.mark.parametrize("case", CASES)
def test_same_message_as_nginx(tmp_path, pki, case):
    require("nginx")
    body, names, expected = broken(pki, tmp_path)[case]
    full = certificates(pki, *names) + body if names else body
    ours = error_of(tmp_path, body, names)
    theirs = nginx_error(tmp_path, full)
    if expected is None:
        assert ours == theirs
    else:
        assert ours != theirs  # a documented difference (see broken())


def test_encrypted_key_without_password_file_never_prompts(tmp_path, pki):
    """nginx 1.22 asks for the pass phrase on the terminal; mailgate fails.

    The build runs in a child whose controlling terminal is a pty, where
    OpenSSL's default would prompt and wait."""
    import pty
    import select

    body = f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key {pki.server_rsa_encrypted_key};"
    config = load(tmp_path, body)
    pid, fd = pty.fork()
    if pid == 0:
        try:
            build_contexts(config)
            os.write(1, b"BUILT\n")
        except ConfigError as exc:
            os.write(1, b"ERROR " + str(exc).encode() + b"\n")
        finally:
            os._exit(0)
    output = b""
    try:
        while select.select([fd], [], [], 10)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert b"pass phrase" not in output
    assert output.startswith(
        f'ERROR cannot load certificate key "{pki.server_rsa_encrypted_key}": PEM_read_bio_PrivateKey() failed (SSL: '.encode()
    ), output


def test_password_file_lines_are_tried_in_order(tmp_path, pki):
    pw = tmp_path / "pw"
    pw.write_text(f"wrong\r\n\n{KEY_PASSWORD}\n")
    body = f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key {pki.server_rsa_encrypted_key}; ssl_password_file {pw};"
    (context,) = build_contexts(load(tmp_path, body))
    assert isinstance(context, TLSContext)


def test_password_from_a_named_pipe(tmp_path, pki):
    fifo = tmp_path / "pw.fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"printf 'wrong\\n{KEY_PASSWORD}\\n' > {fifo}"])
    try:
        body = (f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key {pki.server_rsa_encrypted_key}; "
                f"ssl_password_file {fifo};")
        (context,) = build_contexts(load(tmp_path, body))
    finally:
        writer.wait(10)
    assert isinstance(context, TLSContext)


def test_password_for_a_store_key(tmp_path, pki):
    pw = tmp_path / "pw"
    pw.write_text(KEY_PASSWORD + "\n")
    body = (f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key store:file:{pki.server_rsa_encrypted_key}; "
            f"ssl_password_file {pw};")
    (context,) = build_contexts(load(tmp_path, body))
    assert isinstance(context, TLSContext)


def test_store_key_errors(tmp_path, pki):
    body = f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key store:file:{tmp_path}/none.key;"
    message = error_of(tmp_path, body, ())
    assert message.startswith(f'cannot load certificate key "store:file:{tmp_path}/none.key": '
                              "OSSL_STORE_open() failed (SSL: ")


def test_long_password_is_truncated_with_nginx_remark(tmp_path, pki):
    pw = tmp_path / "pw"
    pw.write_text("x" * 2000 + "\n")
    messages: list = []
    body = (f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key {pki.server_rsa_encrypted_key}; "
            f"ssl_password_file {pw};")
    with pytest.raises(ConfigError):
        build_contexts(load(tmp_path, body), on_message=messages.append)
    assert [(m.level, m.message) for m in messages] == [("error", "password is truncated to 1024 bytes")]


def test_ticket_key_file_changed_since_the_configuration_was_read(tmp_path, pki):
    key = tmp_path / "ticket.key"
    key.write_bytes(os.urandom(48))
    config = load(tmp_path, certificates(pki, "ecdsa") + f"ssl_session_ticket_key {key};")
    key.write_bytes(os.urandom(47))
    with pytest.raises(ConfigError, match=f'^"{key}" must be 48 or 80 bytes in '):
        build_contexts(config)


def test_build_contexts_covers_every_tls_server(tmp_path, pki):
    config = load(
        tmp_path,
        certificates(pki, "ecdsa"),
        certificates(pki, "rsa") + "ssl_ecdh_curve nope;",
    )
    with pytest.raises(ConfigError, match=r'^SSL_CTX_set1_curves_list\("nope"\) failed'):
        build_contexts(config)


def test_servers_without_tls_get_no_context(tmp_path, pki):
    config = configs.load(mail_text(
        server_block(listen="127.0.0.1:20001", protocol="pop3"),
        server_block("starttls on; " + certificates(pki, "ecdsa"), listen="127.0.0.1:20002",
                     protocol="smtp"),
    ), tmp_path)
    zones = SessionZones()
    zones.configure(config)
    plain, starttls = build_contexts(config, zones)
    assert plain is None and starttls.protocol == "smtp"


def test_exception_in_the_password_callback_is_raised_after_openssl_returns(pki):
    from mailgate.tls._keys import load_private_key

    class Exploding(tuple):
        def __getitem__(self, index):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        load_private_key(str(pki.server_rsa_encrypted_key), Exploding((b"x",)), lambda level, message: None)


def test_no_pin_in_messages(tmp_path, pki):
    key = "engine:nosuch:pkcs11:token=t;object=k;pin-value=1234"
    message = error_of(tmp_path, f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key '{key}';", ())
    assert message.startswith('cannot load certificate key "engine:nosuch:pkcs11:token=t;object=k;pin-value=...": ')
    assert "1234" not in message


@pytest.mark.parametrize("body, message", [
    ('ssl_ciphers "HIGH:\udcff";', 'SSL_CTX_set_cipher_list("HIGH:\udcff") failed'),
    ('ssl_ecdh_curve "prime256v1:\udcff";', 'SSL_CTX_set1_curves_list("prime256v1:\udcff") failed'),
    ('ssl_conf_command Options "\udcff";', 'SSL_CONF_cmd("Options", "\udcff") failed'),
    ('ssl_conf_command "\udcff" x;', 'SSL_CONF_cmd("\udcff", "x") failed'),
])
def test_bytes_that_are_not_utf8_reach_openssl_as_read(pki, body, message):
    # the config fuzz target (tests/fuzz/regressions/config/tls-*-not-utf8): such a
    # byte, kept as a surrogate by the loader, made str.encode() raise UnicodeEncodeError
    with pytest.raises(ConfigError) as info:
        build_contexts(configs.load(mail_text(server_block(
            certificates(pki, "ecdsa") + body, listen="127.0.0.1:20000 ssl"))))
    assert str(info.value).startswith(message)


def test_shared_zone_named_with_bytes_that_are_not_utf8(pki):
    config = configs.load(mail_text(server_block(
        certificates(pki, "ecdsa") + 'ssl_session_cache "shared:S\udcff:1m";',
        listen="127.0.0.1:20000 ssl")))
    zones = SessionZones()
    zones.configure(config)
    try:
        (context,) = build_contexts(config, zones)
        assert context.session_zone.name == "S\udcff"
    finally:
        zones.close()

"""Certificates, private keys, CA lists and CRLs, loaded as nginx loads them.

Each loader raises ``LoadFailure`` naming the step that failed, in nginx's
words ("PEM_read_bio_X509_AUX() failed", "ENGINE_by_id() failed", ...), and
leaves OpenSSL's error queue for the caller to append, so that the caller can
build the whole ``cannot load certificate "F": ...`` message.

Every object returned is owned by Python (``ffi.gc``) and freed exactly once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mailgate.tls._binding import ffi, lib

Passwords = tuple[bytes, ...]
Report = Callable[[str, str], None]  # (level, message)


class LoadFailure(Exception):
    """A loader step failed; ``str()`` is nginx's name for the step."""


_PIN = re.compile(r"(pin-value=)[^;&?]*", re.IGNORECASE)


def shown(value: str) -> str:
    """A certificate or key setting as it may appear in a message.

    nginx prints values in full; a ``data:`` value may be a private key and a
    PKCS#11 URI (``engine:`` or ``store:``) may carry a PIN, so those are not
    shown.
    """
    if value.startswith("data:"):
        return "data:..."
    return _PIN.sub(r"\1...", value)


@contextmanager
def open_bio(value: str) -> Iterator[object]:
    """A BIO reading a file, or the PEM text of a ``data:`` value."""
    if value.startswith("data:"):
        # the memory BIO reads this buffer in place: it lives as long as `data`
        data = ffi.from_buffer(value[5:].encode())
        bio = lib.BIO_new_mem_buf(data, len(data))
        failure = "BIO_new_mem_buf() failed"
    else:
        bio = lib.BIO_new_file(os.fsencode(value), b"r")
        failure = "BIO_new_file() failed"
    if bio == ffi.NULL:
        raise LoadFailure(failure)
    try:
        yield bio
    finally:
        lib.BIO_free(bio)


def _end_of_pem() -> bool:
    """True when the last error only says that no more PEM blocks follow."""
    code = lib.ERR_peek_last_error()
    if lib.ERR_GET_LIB(code) == lib.ERR_LIB_PEM and lib.ERR_GET_REASON(code) == lib.PEM_R_NO_START_LINE:
        lib.ERR_clear_error()
        return True
    return False


def load_certificate_chain(value: str) -> list:
    """The certificate of an ``ssl_certificate`` value, then its chain.

    Non-certificate PEM blocks (a key in the same file) are skipped.
    """
    with open_bio(value) as bio:
        leaf = lib.PEM_read_bio_X509_AUX(bio, ffi.NULL, ffi.NULL, ffi.NULL)
        if leaf == ffi.NULL:
            raise LoadFailure("PEM_read_bio_X509_AUX() failed")
        chain = [ffi.gc(leaf, lib.X509_free)]
        while True:
            cert = lib.PEM_read_bio_X509(bio, ffi.NULL, ffi.NULL, ffi.NULL)
            if cert == ffi.NULL:
                if _end_of_pem():
                    return chain
                raise LoadFailure("PEM_read_bio_X509() failed")
            chain.append(ffi.gc(cert, lib.X509_free))


def _load_all(path: str, read, free, failure: str) -> list:
    """Every PEM object ``read`` finds in the file; at least one."""
    items: list = []
    with open_bio(path) as bio:
        while True:
            item = read(bio, ffi.NULL, ffi.NULL, ffi.NULL)
            if item == ffi.NULL:
                if items and _end_of_pem():
                    return items
                raise LoadFailure(failure)
            items.append(ffi.gc(item, free))


def load_ca_certificates(path: str) -> list:
    """Every certificate of an ``ssl_client_certificate`` or
    ``ssl_trusted_certificate`` file; at least one."""
    return _load_all(path, lib.PEM_read_bio_X509_AUX, lib.X509_free, "PEM_read_bio_X509_AUX() failed")


def load_crls(path: str) -> list:
    """Every CRL of an ``ssl_crl`` file; at least one."""
    return _load_all(path, lib.PEM_read_bio_X509_CRL, lib.X509_CRL_free, "PEM_read_bio_X509_CRL() failed")


class _PasswordSource:
    """What the password callback hands OpenSSL: one password per try.

    Without an ``ssl_password_file`` there is no password at all, and the
    callback answers "none" instead of letting OpenSSL prompt on a terminal
    (docs/differences.md#tls).
    An exception inside the callback is kept and re-raised by ``reraise()``
    once OpenSSL has returned (the pyOpenSSL pattern).
    """

    __slots__ = ("exception", "handle", "index", "passwords", "report")

    def __init__(self, passwords: Passwords | None, report: Report):
        self.passwords = passwords
        self.index = 0
        self.report = report
        self.exception: BaseException | None = None
        self.handle = ffi.new_handle(self)

    def fill(self, buf, size: int, rwflag: int) -> int:
        if rwflag or not self.passwords:  # never asked to encrypt; no password: no prompt
            return 0
        password = self.passwords[self.index]
        if len(password) > size:
            self.report("error", f"password is truncated to {size} bytes")
        n = min(len(password), size)
        ffi.memmove(buf, password, n)
        return n

    def reraise(self) -> None:
        if self.exception is not None:
            exc, self.exception = self.exception, None
            raise exc


@ffi.def_extern()
def mg_password_callback(buf, size, rwflag, userdata):
    source = ffi.from_handle(userdata)
    try:
        return source.fill(buf, size, rwflag)
    except BaseException as exc:  # noqa: BLE001 - stored, re-raised after the OpenSSL call
        source.exception = exc
        return 0


def load_private_key(value: str, passwords: Passwords | None, report: Report) -> object:
    """The key of an ``ssl_certificate_key`` value: a PEM file (possibly
    encrypted: the passwords are tried in order), ``data:``, ``engine:NAME:ID``
    or ``store:URI``.  ``report(level, message)`` receives nginx's remark
    about a truncated password."""
    if value.startswith("engine:"):
        return _engine_key(value[len("engine:"):])
    source = _PasswordSource(passwords, report)
    if value.startswith("store:"):
        return _store_key(value[len("store:"):], source)
    tries = len(passwords) if passwords else 1
    with open_bio(value) as bio:
        while True:
            pkey = lib.PEM_read_bio_PrivateKey(bio, ffi.NULL, lib.mg_password_callback, source.handle)
            source.reraise()
            if pkey != ffi.NULL:
                return ffi.gc(pkey, lib.EVP_PKEY_free)
            if tries > 1:
                tries -= 1
                lib.ERR_clear_error()
                lib.BIO_reset(bio)
                source.index += 1
                continue
            raise LoadFailure("PEM_read_bio_PrivateKey() failed")


def _engine_key(spec: str) -> object:
    name, sep, key_id = spec.partition(":")
    if not sep:
        raise LoadFailure("invalid syntax")
    if not lib.MG_HAVE_ENGINE:
        raise LoadFailure('loading "engine:..." certificate keys is not supported')
    engine = lib.mg_engine_by_id(name.encode())
    if engine == ffi.NULL:
        raise LoadFailure("ENGINE_by_id() failed")
    try:
        pkey = lib.mg_engine_load_private_key(engine, key_id.encode())
    finally:
        lib.mg_engine_free(engine)
    if pkey == ffi.NULL:
        raise LoadFailure("ENGINE_load_private_key() failed")
    return ffi.gc(pkey, lib.EVP_PKEY_free)


def _store_key(uri: str, source: _PasswordSource) -> object:
    method = lib.UI_UTIL_wrap_read_pem_callback(lib.mg_password_callback, 0)
    if method == ffi.NULL:
        raise LoadFailure("UI_UTIL_wrap_read_pem_callback() failed")
    try:
        store = lib.OSSL_STORE_open(uri.encode(), method, source.handle, ffi.NULL, ffi.NULL)
        source.reraise()
        if store == ffi.NULL:
            raise LoadFailure("OSSL_STORE_open() failed")
        pkey = ffi.NULL
        try:
            while pkey == ffi.NULL and not lib.OSSL_STORE_eof(store):
                info = lib.OSSL_STORE_load(store)
                source.reraise()
                if info == ffi.NULL:
                    if lib.OSSL_STORE_error(store):
                        break
                    continue
                if lib.OSSL_STORE_INFO_get_type(info) == lib.OSSL_STORE_INFO_PKEY:
                    pkey = lib.OSSL_STORE_INFO_get1_PKEY(info)
                lib.OSSL_STORE_INFO_free(info)
        finally:
            lib.OSSL_STORE_close(store)
    finally:
        lib.UI_destroy_method(method)
    if pkey == ffi.NULL:
        raise LoadFailure("OSSL_STORE_load() failed")
    return ffi.gc(pkey, lib.EVP_PKEY_free)

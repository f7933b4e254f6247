"""Target ``sasl``: the SASL decoders and nginx's base64, compiled against pure Python.

Every client SASL response goes through ``decode_base64`` (``pyx/_b64.pxi``, reference
``protocol/_b64.py``) and one of the decoders of ``protocol/sasl.py``: PLAIN's
``authzid NUL authcid NUL passwd``, LOGIN's user name and password, CRAM-MD5's
``login SP digest``, EXTERNAL's identity, and mailgate's own OAuth 2.0 requests:
XOAUTH2's ``user=`` ^A ``auth=Bearer`` pairs and OAUTHBEARER's GS2 header with its
pairs (RFC 7628 section 3.1); ``parse_auth`` finds the mechanism of the
AUTH/AUTHENTICATE arguments in the method table.

Input: any bytes, used whole as a response and as an argument list (split at spaces);
the OAuth decoders also read it as the decoded request itself (no base64 around it),
so that the fuzzer reaches their parsers without finding base64 first.

Contract: ``decode_base64`` returns bytes or None, the same on both implementations, and
agrees with the standard library wherever ``base64.b64decode(validate=True)`` accepts
a padded input; ``encode_base64`` is the standard encoding and decodes back; the
decoders return ``Credentials`` or raise ``SaslRejected`` (with nginx's log text), the
same with either base64; ``parse_auth`` returns a mechanism of the protocol and the
initial response it takes, or raises ``SaslRejected``.  An accepted OAuth request has
a token of RFC 6750's b64token characters, which the backend's response, made anew from
login and token, carries back unchanged; the error document is JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from mailgate.protocol import _impl, sasl

DECODERS = (
    lambda response, decode: sasl.decode_plain(response, decode),
    lambda response, decode: sasl.decode_login_password(b"user", response, decode),
    lambda response, decode: sasl.decode_cram_md5(response, decode),
    lambda response, decode: sasl.decode_external(response, decode),
    lambda response, decode: sasl.Credentials("plain", sasl.decode_login_username(
        response, decode), b""),
    sasl.decode_xoauth2,
    sasl.decode_oauthbearer,
)
OAUTH = {"xoauth2": (sasl.decode_xoauth2, sasl.encode_xoauth2),
         "oauthbearer": (sasl.decode_oauthbearer, sasl.encode_oauthbearer)}
_B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*\Z")

DICTIONARY = (b"=", b"==", b"*", b"AGdvb2QAcHc=", b"dXNlcg==", b"PLAIN", b"LOGIN",
              b"CRAM-MD5", b"EXTERNAL", b"AHVzZXIA", b"+", b"/", b"XOAUTH2",
              b"OAUTHBEARER", b"\x01", b"\x01\x01", b"user=", b"auth=Bearer ", b"n,a=",
              b"n,,", b"y,,", b"host=", b"port=", b"=2C", b"=3D")


def _outcome(decoder, response: bytes, decode) -> tuple:
    try:
        creds = decoder(response, decode)
    except sasl.SaslRejected as exc:
        assert str(exc).startswith("client sent invalid "), exc
        return ("rejected", str(exc))
    assert isinstance(creds.login, bytes) and isinstance(creds.password, bytes)
    return (creds.method, creds.login, creds.password)


def _check_base64(data: bytes, impls) -> None:
    decoded = [impl.decode_base64(data) for impl in impls]
    assert all(d == decoded[0] for d in decoded), (data, decoded)
    if decoded[0] is not None:
        assert isinstance(decoded[0], bytes)
        # four characters give three bytes; a group of two or three, one or two
        assert len(decoded[0]) == len(data.partition(b"=")[0]) * 3 // 4
    if len(data) % 4 == 0:
        try:
            reference = base64.b64decode(data, validate=True)
        except binascii.Error:
            pass
        else:
            assert decoded[0] == reference, (data, decoded[0], reference)
    encoded = [impl.encode_base64(data) for impl in impls]
    assert all(e == base64.b64encode(data) for e in encoded), (data, encoded)
    assert all(impl.decode_base64(encoded[0]) == data for impl in impls)


def _check_oauth(data: bytes) -> None:
    """``data`` as a decoded OAuth request: accepted ones replay to the same token."""
    for method, (decode, encode) in OAUTH.items():
        outcome = _outcome(decode, data, lambda raw: raw)
        if outcome[0] == "rejected":
            continue
        assert outcome[0] == method and _B64TOKEN.match(outcome[2]), outcome
        login, token = outcome[1], outcome[2]
        if b"\x01" not in login:
            again = decode(encode(login, token), lambda raw: raw)
            assert (again.login, again.password) == (login, token), (data, again)
    error = {"status": "s" + data.decode("utf-8", "surrogateescape"), "scope": "x" + data.hex()}
    document = json.loads(sasl.oauth_error({"status": "x", "schemes": "bearer"}, error))
    assert list(document.items()) == [("status", error["status"]), ("schemes", "bearer"),
                                      ("scope", error["scope"])], document


def one_input(data: bytes) -> None:
    """Decode ``data`` every way a client response is decoded."""
    impls = [_impl.get(name) for name in _impl.available()]
    _check_base64(data, impls)
    for decoder in DECODERS:
        outcomes = [_outcome(decoder, data, impl.decode_base64) for impl in impls]
        assert all(o == outcomes[0] for o in outcomes), (data, outcomes)
    _check_oauth(data)
    args = data.split(b" ")[:11]
    for protocol in ("imap", "pop3", "smtp"):
        try:
            mechanism, initial = sasl.parse_auth(protocol, args)
        except sasl.SaslRejected as exc:
            assert str(exc) == ""
        else:
            assert mechanism in sasl.MECHANISMS and protocol in mechanism.protocols
            assert mechanism.name == args[0].upper()
            assert len(args) == (1 if initial is None else 2)
            assert initial is None or mechanism.initial_response

"""The cffi declarations of mailgate's own C (include/cdef/20_mailgate.h) say what the C
headers (include/csrc/tls.h, include/csrc/zone.h) say: every function with the same
types, every constant defined.  cffi's API mode would not catch an ``int`` declared
where the C has a ``long``: it converts silently."""

from __future__ import annotations

import re
from pathlib import Path

INCLUDE = Path(__file__).resolve().parents[2] / "include"
PROTOTYPE = re.compile(r"^([A-Za-z_][\w \*]*?[\s\*])(mg_\w+)\s*\(([^)]*)\)\s*;", re.M)


def _code(path: Path) -> str:
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    return re.sub(r"[ \t]*\n[ \t]+", " ", text)  # prototypes continued on the next lines


def _type(text: str) -> str:
    """A C type with the spaces made regular: ``const char*`` -> ``const char *``."""
    return re.sub(r"\s+", " ", re.sub(r"\s*\*\s*", " *", text)).replace("* *", "**").strip()


def _parameter_type(parameter: str) -> str:
    """The type of one parameter, its name dropped (``const char *sni`` -> ``const char *``)."""
    parameter = parameter.strip()
    named = re.match(r"^(.*[\s\*])[A-Za-z_]\w*$", parameter)
    if named and named.group(1).strip() not in ("const", "unsigned", "struct"):
        parameter = named.group(1)
    return _type(parameter)


def _prototypes(path: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    found = {}
    for result, name, parameters in PROTOTYPE.findall(_code(path)):
        found[name] = (_type(result), tuple(_parameter_type(p) for p in parameters.split(",")))
    return found


def test_functions_are_declared_as_the_c_defines_them():
    declared = _prototypes(INCLUDE / "cdef" / "20_mailgate.h")
    defined = {**_prototypes(INCLUDE / "csrc" / "tls.h"), **_prototypes(INCLUDE / "csrc" / "zone.h")}
    assert declared, "no prototypes found: the parser is broken"
    for name, signature in declared.items():
        assert name in defined, f"{name} is declared for cffi but not in the C headers"
        assert signature == defined[name], f"{name}: cffi {signature}, C {defined[name]}"


def test_constants_are_defined_in_the_c_headers():
    declared = re.findall(r"static const \w+ (MG_\w+);", _code(INCLUDE / "cdef" / "20_mailgate.h"))
    headers = _code(INCLUDE / "csrc" / "tls.h") + _code(INCLUDE / "csrc" / "zone.h")
    assert declared
    for name in declared:
        assert re.search(r"#define %s\b" % name, headers), f"{name} is not defined in the C headers"

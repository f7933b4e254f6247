"""References a maintainer can open.

Code, tests and documentation cite nginx's source (file and function), RFC sections, the
PROXY protocol specification, or the project's own ``docs/``: never a document kept
outside the repository, such as the behavioural reference the project started from
(cited by its name and a section number) or its design notes (``OUTSIDE`` spells the
names: this file names them only in pieces, so that it cites neither).  Every
``docs/...md`` path cited exists, with the section its ``#anchor`` names, and so does
every ``pyx/`` or ``include/`` file named.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("engine", "tests", "bench", "include", "pyx", "docs")
TOP_LEVEL = ("setup.py",)
SUFFIXES = frozenset({
    ".py", ".pyx", ".pxi", ".pxd", ".c", ".h", ".md", ".txt", ".toml", ".cfg", ".ini", ".sh"})

_REFERENCE, _NOTES = "SP" "EC", "DES" "IGN"  # the two documents outside the repository
OUTSIDE = re.compile(
    rf"\b{_REFERENCE}(?:\.md)?\s*(?:§|\d|[A-Z]\.\d|Appendix\b)"  # a section: §8.2, 10.2, A.1
    rf"|\b{_REFERENCE}\.md\b|\bthe {_REFERENCE}\b|\b{_NOTES}\.md\b")
DOCS_PATH = re.compile(r"\bdocs/([A-Za-z0-9_.-]+\.md)(?:#([A-Za-z0-9_-]+))?")
LOCAL_LINK = re.compile(r"\]\(([A-Za-z0-9_.-]+\.md)?(?:#([A-Za-z0-9_-]+))?\)")
SOURCE_PATH = re.compile(r"\b(?:pyx|include/csrc|include/cdef)/[a-z0-9_]+\.(?:pyx|pxi|pxd|c|h)\b")


def _generated(path: Path) -> bool:
    """C written by Cython (pyx/*.c) or cffi (engine/**/*.c), not kept in the repository."""
    if path.suffix != ".c":
        return False
    top = path.relative_to(ROOT).parts[0]
    return top in ("pyx", "engine")


def _files() -> list[Path]:
    found = [ROOT / name for name in TOP_LEVEL if (ROOT / name).is_file()]
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if (path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts
                    and not _generated(path) and path != Path(__file__).resolve()):
                found.append(path)
    return found


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(document: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in document.read_text().splitlines()
            if re.match(r"#{1,6} ", line)}


def _lines(path: Path):
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        yield f"{path.relative_to(ROOT)}:{number}", line


FILES = _files()


def test_the_scan_sees_the_tree():
    names = {str(path.relative_to(ROOT)) for path in FILES}
    assert {"engine/mailgate/protocol/_server.py", "pyx/_reader.pxi", "include/csrc/tls.h",
            "docs/nginx-behaviour.md", "docs/differences.md"} <= names
    assert not any(name.startswith("pyx/") and name.endswith(".c") for name in names)


def test_no_document_outside_the_repository_is_cited():
    cited = [f"{where}: {line.strip()}" for path in FILES for where, line in _lines(path)
             if OUTSIDE.search(line)]
    assert not cited, "cite nginx's source, an RFC or docs/ instead:\n" + "\n".join(cited)


def test_the_pattern_tells_a_citation_from_a_name():
    ref, notes = _REFERENCE, _NOTES
    for citation in (f"({ref} §8.2)", f"{ref} 10.8", f"{ref} A.3", f"({ref} Appendix A)",
                     f"{ref}.md 8.2", f"checked against the {ref}", f"{notes}.md"):
        assert OUTSIDE.search(citation), citation
    for name in ("SSL_R_BAD_CHANGE_CIPHER_SPEC,", "UNSPEC", "_SPECIFIERS", "SPECIAL",
                 "SSL_R_NO_CIPHERS_SPECIFIED"):
        assert not OUTSIDE.search(name), name


def test_cited_docs_exist_with_their_sections():
    problems = []
    for path in FILES:
        for where, line in _lines(path):
            targets = [(ROOT / "docs" / name, anchor) for name, anchor in DOCS_PATH.findall(line)]
            if path.parent == ROOT / "docs":
                targets += [(path.parent / name if name else path, anchor)
                            for name, anchor in LOCAL_LINK.findall(line)
                            if name.endswith(".md") or (not name and anchor)]
            for document, anchor in targets:
                if not document.is_file():
                    problems.append(f"{where}: no {document.relative_to(ROOT)}")
                elif anchor and anchor not in _anchors(document):
                    problems.append(f"{where}: no section #{anchor} in "
                                    f"{document.relative_to(ROOT)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("document", ["nginx-behaviour.md", "differences.md"])
def test_docs_are_cited(document):
    citing = [path for path in FILES if path.parent != ROOT / "docs"
              and f"docs/{document}" in path.read_text(errors="replace")]
    assert citing, f"nothing cites docs/{document}"


def test_cited_sources_of_the_repository_exist():
    missing = [f"{where}: {name}" for path in FILES for where, line in _lines(path)
               for name in SOURCE_PATH.findall(line) if not (ROOT / name).is_file()]
    assert not missing, "\n".join(missing)

"""The nginx configuration lexer: words, quotes, escapes, comments, lines, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.config import ConfigError
from mailgate.config.lexer import End, tokenize


def statements(text, file="f.conf", **kw):
    return [(s.words, s.end, s.line) for s in tokenize(text, file, **kw)]


def words(text):
    return [s.words for s in tokenize(text, "f") if s.words]


def lex_error(text, **kw):
    with pytest.raises(ConfigError) as info:
        list(tokenize(text, "f.conf", **kw))
    return str(info.value)


def test_statements_blocks_and_lines():
    text = "a b;\nblock {\n  c 'd e'\n  ;\n}\n"
    assert statements(text) == [
        (("a", "b"), End.SEMICOLON, 1),
        (("block",), End.BLOCK_START, 2),
        (("c", "d e"), End.SEMICOLON, 4),  # reported on the line of its ";", as nginx
        ((), End.BLOCK_END, 5),
        ((), End.EOF, 6),
    ]


def test_comments_only_at_word_start():
    assert words("a b#c; # comment ; x\nd;") == [("a", "b#c"), ("d",)]


def test_quotes_and_escapes():
    assert words(r'''a "x y" 'p q' "\"in\"" '\'s' "t\tn\nr\rb\\" bare\"q;''') == [
        ("a", "x y", "p q", '"in"', "'s", "t\tn\nr\rb\\", 'bare"q'),
    ]


def test_other_escapes_keep_the_backslash():
    assert words(r"a \d \x;") == [("a", r"\d", r"\x")]


def test_escaped_delimiters_stay_in_words():
    # the escape keeps ";" and " " inside the word; nginx leaves the backslash in place
    assert words(r"a b\;c d\ e;") == [("a", r"b\;c", r"d\ e")]


def test_braces_inside_words_and_variables():
    assert words("a b}c ${x}y;") == [("a", "b}c", "${x}y")]


def test_empty_quoted_word():
    assert words('a "";') == [("a", "")]


def test_multiline_quoted_word_counts_lines():
    assert statements('a "x\ny"\n;') == [(("a", "x\ny"), End.SEMICOLON, 3), ((), End.EOF, 3)]


def test_block_start_right_after_quote():
    assert statements('a "b"{ }')[0] == (("a", "b"), End.BLOCK_START, 1)


@pytest.mark.parametrize(
    "text,message",
    [
        ('a "b"x;', 'unexpected "x" in f.conf:1'),
        ("; a;", 'unexpected ";" in f.conf:1'),
        ("\n{", 'unexpected "{" in f.conf:2'),
        ("a }", 'unexpected "}" in f.conf:1'),
        ("a b", 'unexpected end of file, expecting ";" or "}" in f.conf:1'),
        ("a b\n", 'unexpected end of file, expecting ";" or "}" in f.conf:2'),
        ('a "b', 'unexpected end of file, expecting ";" or "}" in f.conf:1'),
        ("a \\", 'unexpected end of file, expecting ";" or "}" in f.conf:1'),
    ],
)
def test_errors(text, message):
    assert lex_error(text) == message


def test_parameter_errors_have_no_line():
    assert lex_error("pid x", parameter=True) == (
        'unexpected end of parameter, expecting ";" in f.conf'
    )


def test_errors_come_after_earlier_statements():
    stream = tokenize("a;\nb }", "f")
    assert next(stream).words == ("a",)
    with pytest.raises(ConfigError):
        next(stream)


# Round trip: any list of words, written with nginx quoting, reads back the same.

_word = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)


def _quote(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")
    return '"%s"' % escaped


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_word, min_size=1, max_size=5), max_size=6))
def test_round_trip(lines):
    text = "\n".join(" ".join(_quote(w) for w in line) + ";" for line in lines)
    assert words(text) == [tuple(line) for line in lines]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_tokenizes_or_raises_config_error(text):
    try:
        result = list(tokenize(text, "f"))
    except ConfigError as exc:
        assert exc.file == "f"
    else:
        assert result[-1].end is End.EOF

"""Value syntaxes: times, sizes, numbers (nginx's ngx_parse_time/size, ngx_atoi)."""

from __future__ import annotations

import pytest

from mailgate.config.values import MAX_INT, atoi, parse_size, parse_time


@pytest.mark.parametrize(
    "text,msec,sec",
    [
        ("60", 60_000, 60),
        ("10ms", 10, None),
        ("1s", 1000, 1),
        ("1m", 60_000, 60),
        ("1h30m", 5_400_000, 5400),
        ("1h 30m", 5_400_000, 5400),
        ("1d1h", 90_000_000, 90_000),
        ("1w", 604_800_000, 604_800),
        ("1M", None, 2_592_000),
        ("1y", None, 31_536_000),
        ("1h1d", None, None),
        ("1m1m", None, None),
        ("1s 500ms", 1500, None),
        ("1 2", 3000, 3),
        ("1 2 3", None, None),
        ("", None, None),
        ("s", None, None),
        ("x", None, None),
        ("-1", None, None),
        ("1x", None, None),
        (str(MAX_INT), None, MAX_INT),
        (str(MAX_INT + 1), None, None),
    ],
)
def test_parse_time(text, msec, sec):
    assert parse_time(text, seconds=False) == msec
    assert parse_time(text, seconds=True) == sec


@pytest.mark.parametrize(
    "text,size",
    [("4096", 4096), ("8k", 8192), ("8K", 8192), ("1m", 1 << 20), ("1M", 1 << 20), ("0", 0),
     ("1g", None), ("k", None), ("", None), ("-1", None), ("1.5k", None), ("8kk", None)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text,value", [("0", 0), ("42", 42), ("", None), ("+1", None),
                                        ("1a", None), ("٣", None)])
def test_atoi(text, value):
    assert atoi(text) == value


def test_atoi_of_many_digits():
    # ngx_atoi: leading zeros cost nothing, a value past the limit is an error, however
    # long the text (int() refuses more than 4300 digits with ValueError)
    assert atoi("0" * 5000 + "7") == 7
    assert atoi("1" * 5000) is None
    assert atoi(str(MAX_INT)) == MAX_INT and atoi(str(MAX_INT + 1)) is None
    assert atoi("65536", 65535) is None and atoi("00065535", 65535) == 65535
    assert parse_size("1" * 5000 + "k") is None

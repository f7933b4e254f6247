"""Scalar value syntaxes of nginx configurations: numbers, sizes and times.

Each function returns None where nginx's parser (``ngx_atoi``, ``ngx_parse_size``,
``ngx_parse_time``) returns NGX_ERROR, so callers can word the error as nginx does.
"""

from __future__ import annotations

__all__ = ["atoi", "parse_size", "parse_time", "MAX_INT"]

MAX_INT = 2**63 - 1  # NGX_MAX_INT_T_VALUE on 64-bit builds
MAX_SIZE = 2**63 - 1  # NGX_MAX_SIZE_T_VALUE as a signed ssize_t bound


def atoi(text: str, limit: int = MAX_INT) -> int | None:
    """A non-negative decimal integer of ASCII digits only, as ``ngx_atoi``."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    digits = text.lstrip("0")
    # more digits than the limit has are over it; int() would refuse a text past
    # sys.get_int_max_str_digits() (4300) with ValueError (an auth_http header can be 64k)
    if len(digits) > len(str(limit)):
        return None
    value = int(digits or "0")
    return value if value <= limit else None


def parse_size(text: str) -> int | None:
    """``N``, ``Nk``/``NK`` or ``Nm``/``NM`` bytes, as ``ngx_parse_size``."""
    if not text:
        return None
    scale = {"k": 1024, "K": 1024, "m": 1024 * 1024, "M": 1024 * 1024}.get(text[-1], 1)
    digits = text[:-1] if scale != 1 else text
    value = atoi(digits, MAX_SIZE // scale)
    return None if value is None else value * scale


_STEPS = ("start", "year", "month", "week", "day", "hour", "min", "sec", "msec", "last")
_STEP = {name: i for i, name in enumerate(_STEPS)}
_UNITS = {  # unit letter -> (step it moves to, seconds it stands for)
    "y": ("year", 60 * 60 * 24 * 365),
    "M": ("month", 60 * 60 * 24 * 30),
    "w": ("week", 60 * 60 * 24 * 7),
    "d": ("day", 60 * 60 * 24),
    "h": ("hour", 60 * 60),
    "m": ("min", 60),
    "s": ("sec", 1),
}


def parse_time(text: str, *, seconds: bool) -> int | None:
    """A time as ``ngx_parse_time``: milliseconds, or whole seconds when ``seconds``.

    Parts go from the largest unit to the smallest (``1h 30m``, ``1d1h``) and a bare
    number means seconds.  A milliseconds slot refuses ``y`` and ``M`` (nginx starts
    it at the month step); a seconds slot refuses ``ms``.
    """
    step = _STEP["start"] if seconds else _STEP["month"]
    total = 0
    value = 0
    valid = False
    pos, n = 0, len(text)
    while pos < n:
        ch = text[pos]
        pos += 1
        if "0" <= ch <= "9":
            value = value * 10 + (ord(ch) - 48)
            if value > MAX_INT:
                return None
            valid = True
            continue
        if ch == "m" and pos < n and text[pos] == "s":
            if seconds or step >= _STEP["msec"]:
                return None
            pos += 1
            step, scale = _STEP["msec"], 1
        elif ch in _UNITS:
            name, scale = _UNITS[ch]
            if (step > _STEP["start"]) if ch == "y" else (step >= _STEP[name]):
                return None
            step = _STEP[name]
        elif ch == " ":
            if step >= _STEP["sec"]:
                return None
            step, scale = _STEP["last"], 1
        else:
            return None
        if step != _STEP["msec"] and not seconds:
            scale *= 1000
        if value > MAX_INT // scale:
            return None
        value *= scale
        if total > MAX_INT - value:
            return None
        total += value
        value = 0
        while pos < n and text[pos] == " ":
            pos += 1
    if not valid:
        return None
    if not seconds:
        if value > MAX_INT // 1000:
            return None
        value *= 1000
    if total > MAX_INT - value:
        return None
    return total + value

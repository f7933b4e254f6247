"""mailgate bugs this suite found and the lead has not fixed yet, one text each: the
reasons of ``@pytest.mark.mailgate_bug`` (a strict xfail for mailgate's implementations;
once the code is fixed the test passes, fails as XPASS, and its mark goes)."""

LOG_LINE_LENGTH = (
    "a cut error_log line is 2048 characters before its line feed, nginx's 2047 "
    "(NGX_MAX_ERROR_STR 2048 counts the line feed): log.format_line cuts at MAX_LINE "
    "and then appends the newline")


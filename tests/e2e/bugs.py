"""mailgate bugs this suite found and the lead has not fixed yet, one text each: the
reasons of ``@pytest.mark.mailgate_bug`` (a strict xfail for mailgate's implementations;
once the code is fixed the test passes, fails as XPASS, and its mark goes)."""



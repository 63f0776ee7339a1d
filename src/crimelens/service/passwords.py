"""Password policy (SECURITY.md SEC-06, following NIST SP 800-63B §5.1.1.2).

12 to 128 characters (Unicode code points after NFKC normalisation, spaces allowed), no
composition rules, and refused when it is a known common password, a keyboard or digit run,
one repeated character, or contains the username. The bundled list is built from widely
reused base words and the suffixes people add to reach a length rule; it is checked
case-insensitively with spaces removed.
"""

from __future__ import annotations

import unicodedata
from functools import cache

MIN_LENGTH = 12
MAX_LENGTH = 128

_BASE = """
password passw0rd p@ssword p@ssw0rd qwerty qwertyuiop asdfghjkl zxcvbnm iloveyou admin
administrator welcome letmein monkey dragon football baseball basketball soccer hockey
master sunshine princess shadow superman batman trustno1 starwars whatever computer internet
michael jennifer jordan hunter ranger thomas charlie freedom liverpool chelsea arsenal
changeme default secret security police sheriff detective officer crimelens chicago
summer winter spring autumn january february october december monday friday
abc123 abcdef abcdefgh 123abc qazwsx 1qaz2wsx zaq12wsx 1q2w3e4r 1q2w3e4r5t q1w2e3r4
q1w2e3r4t5y6 123qwe qwe123 asd123 killer pokemon minecraft fortnite cheese cookie
flower butterfly purple orange banana chocolate mustang ferrari harley corvette
matrix hello hellohello helloworld loveme lovely iloveu family forever blessed jesus
"""

_WHOLE = """
123456789012 1234567890123 12345678901234 123456789123 111111111111 000000000000
qwertyuiopas qwerty123456 qwertyuiop12 qwertyuiop123 asdfghjkl123 zxcvbnm12345
password1234 password12345 password123456 passwordpassword iloveyou1234 1q2w3e4r5t6y
1qaz2wsx3edc zaq12wsxcde3 abcdefghijkl abc123abc123 123123123123 qweasdzxc123
letmeinletmein adminadmin123 administrator1 welcome12345 welcometothejungle
correcthorsebatterystaple trustno1trustno1 monkey123456 dragon123456 football1234
baseball1234 princess1234 sunshine1234 superman1234 starwars1234 whatever1234
changeme1234 changemenow1 mypassword123 mypassword1234 thisismypassword passwordispassword
"""

_SUFFIXES = ("", "1", "12", "123", "1234", "12345", "123456", "!", "1!", "123!", "2020", "2021",
             "2022", "2023", "2024", "2025", "2026", "01", "007", "69", "99", "00")
_RUNS = ("0123456789" * 3, "9876543210" * 3, "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm")


@cache
def common_passwords() -> frozenset[str]:
    """The bundled common-password list (normalised: lower case, no spaces)."""
    words = _BASE.split()
    out = set(_WHOLE.split())
    for w in words:
        for suffix in _SUFFIXES:
            out.add(w + suffix)
            out.add(w + w + suffix)
            out.add(suffix + w)
    return frozenset(x for x in out if len(x) >= MIN_LENGTH)


def normalise(password: str) -> str:
    """NFKC form of the password (what is hashed and measured)."""
    return unicodedata.normalize("NFKC", password)


def problems(password: str, username: str = "") -> list[str]:
    """Why ``password`` is refused (empty when it is acceptable)."""
    pw = normalise(password)
    n = len(pw)
    if n < MIN_LENGTH:
        return [f"password must have at least {MIN_LENGTH} characters"]
    if n > MAX_LENGTH:
        return [f"password must have at most {MAX_LENGTH} characters"]
    key = "".join(pw.lower().split())
    out = []
    if key in common_passwords():
        out.append("password is on the list of common passwords")
    if len(set(key)) <= 2 or any(key in run for run in _RUNS):
        out.append("password is a repeated character or a keyboard/digit run")
    if username and len(username) >= 3 and username.lower() in pw.lower():
        out.append("password must not contain the username")
    return out

"""A return's reference: what the customer's return slip prints (as text and as a QR code) and
what the post room scans. Pure: no queries.

``R261130-7KM4QXG``: ``R``, the date of the return in Asia/Shanghai (YYMMDD), six random
characters and a check character. The characters are Crockford's base-32 (digits and capital
letters without I, L, O and U), so nothing reads as something else; a person who types
``o`` for ``0`` or ``l`` for ``1``, in lower case, with spaces or without the dash, still
gets the return. The check character (Luhn mod 32) catches any one mistyped character and
most swapped neighbours before a wrong return is looked up. Six random characters give about
a billion references a day: two returns of the same day share one with a chance of about
one in two million at a thousand returns a day (the database refuses it; see
``return_request_submit``).
"""

import datetime as dt
import re
import secrets

from django.utils import timezone
from stdnum import luhn

from invoices.workdays import business_tz

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32
RANDOM_LENGTH = 6
# Stored and printed form; also a CheckConstraint on the column.
REFERENCE_REGEX = r"^R[0-9]{6}-[0-9A-HJKMNP-TV-Z]{7}$"
_TYPED = re.compile(r"R(\d{6})([0-9A-HJKMNP-TV-Z]{6})([0-9A-HJKMNP-TV-Z])")
# What people type for what they mean (Crockford's decoding).
_READS_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _check_character(body: str) -> str:
    return luhn.calc_check_digit(body, alphabet=ALPHABET)


def reference_new(*, at: dt.datetime | None = None) -> str:
    """A fresh reference for a return made at ``at`` (now by default)."""
    day = timezone.localtime(at or timezone.now(), business_tz())
    # One draw of 30 random bits, five to a character: as uniform as six draws of a character,
    # without five more calls into the operating system's random source (issue 16, P1).
    bits = secrets.randbits(5 * RANDOM_LENGTH)
    random_part = "".join(ALPHABET[(bits >> 5 * i) & 31] for i in range(RANDOM_LENGTH))
    body = f"{day:%y%m%d}{random_part}"
    return f"R{body[:6]}-{body[6:]}{_check_character(body)}"


def reference_new_now() -> str:
    """The model field's default (a callable without arguments)."""
    return reference_new()


def reference_parse(value: str) -> str | None:
    """The canonical reference ``value`` stands for, or None when it is not one (or its
    check character disagrees: a mistyped reference never finds another return)."""
    text = "".join((value or "").split()).replace("-", "").upper()
    if not text.startswith("R"):
        return None
    text = "R" + text[1:].translate(_READS_AS)
    match = _TYPED.fullmatch(text)
    if match is None:
        return None
    day, random_part, check = match.groups()
    if _check_character(day + random_part) != check:
        return None
    return f"R{day}-{random_part}{check}"


def reference_looks_typed(value: str) -> bool:
    """Whether ``value`` was meant as a reference (an ``R`` and digits), valid or not: the scan
    field then says the reference is wrong rather than that it is no invoice code."""
    text = "".join((value or "").split()).upper()
    return text.startswith("R") and len(text) >= 8 and text[1:7].isdigit()

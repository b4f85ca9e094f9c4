"""Log hygiene: phone numbers never reach the logs in full (issue 14)."""

import logging
import re

# E.164 numbers (+8613900139001, +86 139 0013 9001) and bare Chinese mobile numbers
# (13900139001). Invoice codes (10/12 digits), numbers (8) and form numbers (16) do not match.
_PHONE = re.compile(
    r"\+\d{1,3}[\s-]?\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}(?!\d)|(?<![\d.])1[3-9]\d{9}(?![\d.])"
)


def mask_phone(number: str) -> str:
    """+8613900139001 -> +86 139****9001; other countries keep their first and last digits."""
    digits = re.sub(r"\D", "", number)
    if number.strip().startswith("+"):
        if digits.startswith("86") and len(digits) == 13:
            return f"+86 {digits[2:5]}****{digits[-4:]}"
        return f"+{digits[:2]}****{digits[-4:]}"
    if len(digits) == 11:
        return f"{digits[:3]}****{digits[-4:]}"
    return f"****{digits[-4:]}"


def mask_phones(text: str) -> str:
    return _PHONE.sub(lambda match: mask_phone(match.group()), text)


class PhoneMaskFilter(logging.Filter):
    """On a handler: every record it writes has its phone numbers masked (ours and libraries')."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phones(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True

"""Reading an invoice's code and number as people type them or a barcode scanner sends them."""

import re

from django.utils.translation import gettext as _

from core.exceptions import DomainError

# Code: 10 or 12 digits; number: 8 digits. Typed with a space (or a dash), or concatenated by
# a scanner: 18 or 20 digits, which split unambiguously.
_CODE_AND_NUMBER = re.compile(r"(\d{10}|\d{12})[\s\-]*(\d{8})")


class InvalidCodeAndNumber(DomainError):
    pass


def parse_code_and_number(value: str) -> tuple[str, str]:
    """``"3300201130 10000001"`` or ``"330020113010000001"`` → ``("3300201130", "10000001")``."""
    match = _CODE_AND_NUMBER.fullmatch((value or "").strip())
    if match is None:
        raise InvalidCodeAndNumber(
            _(
                "Enter the invoice code (10 or 12 digits) and number (8 digits), separated by a "
                "space or as the scanner reads them."
            )
        )
    return match.group(1), match.group(2)

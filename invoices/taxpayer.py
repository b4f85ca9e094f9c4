"""Taxpayer ID validation (R13).

Chinese taxpayer IDs are 15, 18 or 20 characters. An 18-character ID is a unified social
credit code (统一社会信用代码, GB 32100-2015) whose last character is a check character.

``stdnum.cn.uscc.validate`` refuses codes whose first 8 characters are not all digits, but the
standard lets the registration-authority and entity-type characters (positions 1 and 2) be
letters (e.g. ``N`` for rural collective economic organisations, ``Y`` for others), so only
positions 3-8 (the administrative division) must be digits. We therefore check the format
ourselves and use stdnum only for the check-character computation.
"""

import re

from django.utils.translation import gettext as _
from stdnum.cn import uscc

from invoices.exceptions import InvalidTaxpayerId

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_RE = re.compile(rf"^[{USCC_ALPHABET}]{{2}}[0-9]{{6}}[{USCC_ALPHABET}]{{10}}$")
_LEGACY_RE = re.compile(r"^[0-9A-Z]+$")
ALLOWED_LENGTHS = (15, 18, 20)


def normalize_taxpayer_id(value: str) -> str:
    return re.sub(r"[\s-]", "", value or "").upper()


def validate_taxpayer_id(value: str) -> str:
    """Return the normalised ID, or raise ``InvalidTaxpayerId`` with the reason."""
    number = normalize_taxpayer_id(value)
    if len(number) not in ALLOWED_LENGTHS:
        raise InvalidTaxpayerId(
            _("A taxpayer ID has 15, 18 or 20 characters; this one has %(count)d.")
            % {"count": len(number)}
        )
    if len(number) == 18:
        if not _USCC_RE.match(number):
            raise InvalidTaxpayerId(
                _(
                    "An 18-character taxpayer ID must be a unified social credit code: digits "
                    "and capital letters except I, O, S, V and Z, with digits in positions 3 "
                    "to 8."
                )
            )
        if uscc.calc_check_digit(number[:17]) != number[17]:
            raise InvalidTaxpayerId(
                _(
                    "The last character of this unified social credit code does not match "
                    "its check character: please check the code for a typing error."
                )
            )
    elif not _LEGACY_RE.match(number):
        raise InvalidTaxpayerId(_("A taxpayer ID may contain only digits and capital letters."))
    return number

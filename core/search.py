"""What the back office's search boxes share."""

import unicodedata

from django.utils.text import smart_split, unescape_string_literal


def search_terms(query: str) -> list[str]:
    """The words of a list's search box as Django's admin splits them (quotes keep a phrase
    together), full-width digits and letters (a Chinese input method's) made ASCII."""
    terms = []
    for bit in smart_split(unicodedata.normalize("NFKC", query or "").strip()):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit:
            terms.append(bit)
    return terms

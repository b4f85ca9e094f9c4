"""Fitting a text message into one SMS segment.

A segment carries 160 characters of the GSM 03.38 default alphabet (characters of its
extension table count twice), or 70 UCS-2 characters as soon as one character is outside that
alphabet — any Chinese character, for instance. Texts that name a free-text value (a rejection
reason) shorten that value, never the fixed wording, to stay within one segment.
"""

from collections.abc import Callable

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_SEGMENT = 160
UCS2_SEGMENT = 70
ELLIPSIS = "..."  # in the GSM alphabet, unlike "…", so it never forces UCS-2 by itself


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def segment_units(text: str) -> tuple[int, int]:
    """(units used, units one segment holds) for this text."""
    if is_gsm7(text):
        return sum(2 if c in GSM7_EXTENSION else 1 for c in text), GSM7_SEGMENT
    # UCS-2: characters outside the Basic Multilingual Plane take two code units.
    return len(text.encode("utf-16-le")) // 2, UCS2_SEGMENT


def fits_one_segment(text: str) -> bool:
    used, limit = segment_units(text)
    return used <= limit


def fit_one_segment(render: Callable[[str], str], value: str) -> str:
    """``render(value)``, with ``value`` shortened (ending in "...") until it fits one segment.

    If even an empty value does not fit, the fixed wording is too long: that is a bug in the
    wording, and the text is returned unshortened rather than losing its meaning.
    """
    value = " ".join(value.split())
    text = render(value)
    if fits_one_segment(text):
        return text
    low, high = 0, len(value)  # binary search for the longest prefix that fits
    while low < high:
        middle = (low + high + 1) // 2
        if fits_one_segment(render(value[:middle].rstrip() + ELLIPSIS)):
            low = middle
        else:
            high = middle - 1
    if low == 0 and not fits_one_segment(render(ELLIPSIS)):
        return text
    return render(value[:low].rstrip() + ELLIPSIS)

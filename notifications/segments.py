"""Fitting a text message into one SMS segment.

A segment carries 160 characters of the GSM 03.38 default alphabet (characters of its
extension table count twice), or 70 UCS-2 characters as soon as one character is outside that
alphabet — any Chinese character, for instance. Texts that name a free-text value (a rejection
reason) shorten that value, never the fixed wording, to stay within one segment
(``notifications.texts``).
"""

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


def segment_count(text: str) -> int:
    """How many segments the text is sent in: one if it fits, otherwise parts of 153 GSM-7 or
    67 UCS-2 units (each part gives 7 or 3 to the header that joins them)."""
    used, limit = segment_units(text)
    if used <= limit:
        return 1
    part = limit - (7 if limit == GSM7_SEGMENT else 3)
    return -(-used // part)

"""One SMS segment: 160 GSM-7 units, or 70 UCS-2 units once any character is outside GSM-7."""

from notifications.segments import fits_one_segment, is_gsm7, segment_count, segment_units


def test_plain_english_is_gsm7_with_160_units():
    assert is_gsm7("Invoice 12345678 has been returned.")
    assert segment_units("a" * 160) == (160, 160)
    assert fits_one_segment("a" * 160)
    assert not fits_one_segment("a" * 161)


def test_gsm7_extension_characters_count_twice():
    assert segment_units("€[]") == (6, 160)


def test_one_chinese_character_switches_to_70_ucs2_units():
    assert not is_gsm7("退票 ok")
    assert segment_units("发" * 70) == (70, 70)
    assert not fits_one_segment("发" * 71)


def test_a_longer_text_is_sent_in_parts_of_153_or_67_units():
    assert segment_count("a" * 160) == 1
    assert segment_count("a" * 161) == 2
    assert segment_count("a" * 306) == 2
    assert segment_count("a" * 307) == 3
    assert segment_count("发" * 70) == 1
    assert segment_count("发" * 71) == 2
    assert segment_count("发" * 134) == 2
    assert segment_count("发" * 135) == 3

"""One SMS segment: 160 GSM-7 units, or 70 UCS-2 units once any character is outside GSM-7."""

import pytest

from notifications.segments import fit_one_segment, fits_one_segment, is_gsm7, segment_units


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


def test_the_ellipsis_used_for_shortening_keeps_english_in_gsm7():
    text = fit_one_segment(lambda r: f"Rejected: {r}", "x" * 400)
    assert is_gsm7(text)
    assert text.endswith("...")
    assert len(text) == 160


def test_a_value_that_fits_is_left_alone_apart_from_whitespace():
    assert fit_one_segment(lambda r: f"Rejected: {r}", "  blurred \n scan ") == (
        "Rejected: blurred scan"
    )


def test_chinese_is_shortened_to_70_characters_and_keeps_the_fixed_wording():
    text = fit_one_segment(lambda r: f"发票12345678退票被驳回：{r}，请重新提交。", "原因" * 100)
    assert segment_units(text) == (70, 70)
    assert text.startswith("发票12345678退票被驳回：")
    assert text.endswith("...，请重新提交。")


@pytest.mark.parametrize("value", ["", "short"])
def test_wording_too_long_even_without_the_value_is_returned_whole(value):
    wording = "x" * 200 + "{}"
    assert fit_one_segment(lambda r: wording.format(r), value) == wording.format(value)

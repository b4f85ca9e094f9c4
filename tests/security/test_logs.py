"""Logs keep phone numbers masked and the Twilio SDK quiet (issue 14)."""

import io
import logging

import pytest

from config.logfilters import PhoneMaskFilter, mask_phone, mask_phones
from notifications.backends import ConsoleSmsBackend


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+8613900139001", "+86 139****9001"),
        ("+86 139 0013 9001", "+86 139****9001"),
        ("13900139001", "139****9001"),
        ("+14155550123", "+14****0123"),
    ],
)
def test_a_phone_number_is_masked(number, masked):
    assert mask_phone(number) == masked
    assert mask_phones(f"sending to {number} now") == f"sending to {masked} now"


@pytest.mark.parametrize(
    "text",
    [
        "invoice 044031900111 12345678",  # a 12-digit code and an 8-digit number
        "form 4403202612000001",  # a 16-digit red-letter form number
        "amount 999999999999.99",
        "SMS 42 failed",
    ],
)
def test_other_numbers_are_left_alone(text):
    assert mask_phones(text) == text


@pytest.fixture
def console_output():
    """What the configured console handler writes (settings.LOGGING), captured."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, PhoneMaskFilter) for f in h.filters)
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


def test_our_logs_mask_phone_numbers(console_output):
    logging.getLogger("notifications.services").warning("SMS to %s failed", "+8613900139001")
    logging.getLogger("returns.services").warning("customer phone 13900139001")
    written = console_output.getvalue()
    assert "+86 139****9001" in written
    assert "139****9001" in written
    assert "13900139001" not in written


def test_the_twilio_sdk_logs_only_warnings(console_output):
    logger = logging.getLogger("twilio.http_client")
    assert logger.getEffectiveLevel() == logging.WARNING
    logger.info("-- BEGIN Twilio API Request -- AC123 To=+8613900139001")
    logger.warning("Twilio said no to +8613900139001")
    written = console_output.getvalue()
    assert "BEGIN Twilio API Request" not in written
    assert "AC123" not in written
    assert "Twilio said no to +86 139****9001" in written


def test_the_console_sms_backend_masks_the_number(capsys):
    ConsoleSmsBackend().send(to="+8613900139001", body="退回成功")
    printed = capsys.readouterr().out
    assert "+86 139****9001" in printed
    assert "13900139001" not in printed

"""What the post room's scan field reads, without a database: the QR code printed on a VAT
invoice (``invoices.qr``), a return slip's reference (``returns.references``) and which of the
three a scan is (``returns.scans``)."""

import datetime as dt
from decimal import Decimal

import pytest

from invoices.qr import (
    InvalidInvoiceQr,
    QrMedium,
    invoice_qr_disagreements,
    looks_like_invoice_qr,
    parse_invoice_qr,
)
from returns.exceptions import InvalidScan
from returns.references import (
    ALPHABET,
    REFERENCE_REGEX,
    reference_looks_typed,
    reference_new,
    reference_parse,
)
from returns.scans import ScanKind, scan_parse

PAPER_ORDINARY = "01,04,033002600311,50000001,943.40,20261101,12345678901234567890,A1B2"
PAPER_SPECIAL = "01,01,3300201130,10000001,1000.00,20261102,,3F9C"
DIGITAL = "01,31,,24442000000000012345,1060.00,20261101,,ABCD"

# --- the invoice QR code ------------------------------------------------------------------------


def test_a_paper_ordinary_invoice_qr_code_is_read_field_by_field():
    qr = parse_invoice_qr(PAPER_ORDINARY)
    assert (qr.version, qr.invoice_type, qr.code, qr.number) == (
        "01",
        "04",
        "033002600311",
        "50000001",
    )
    assert qr.amount == Decimal("943.40")
    assert qr.issued_on == dt.date(2026, 11, 1)
    assert qr.check_code == "12345678901234567890"
    assert qr.is_paper
    assert not qr.is_special


def test_a_paper_special_invoice_has_no_check_code():
    qr = parse_invoice_qr(PAPER_SPECIAL)
    assert qr.is_special
    assert qr.is_paper
    assert qr.check_code == ""
    assert qr.code == "3300201130"


def test_the_digital_variant_has_no_code_and_a_20_digit_number():
    qr = parse_invoice_qr(DIGITAL)
    assert qr.code == ""
    assert qr.number == "24442000000000012345"
    assert qr.medium == QrMedium.DIGITAL
    assert not qr.is_paper


@pytest.mark.parametrize("invoice_type", ["08", "10", "14"])
def test_the_older_e_invoices_are_not_paper(invoice_type):
    qr = parse_invoice_qr(f"01,{invoice_type},033002600311,50000001,943.40,20261101,123,A1B2")
    assert qr.medium == QrMedium.ELECTRONIC
    assert not qr.is_paper


@pytest.mark.parametrize(
    "payload",
    [
        PAPER_ORDINARY + ",",  # a trailing comma
        PAPER_ORDINARY.replace(",", "，"),  # full-width commas from a Chinese input method
        "  " + PAPER_ORDINARY + "\n",
        ",".join(PAPER_ORDINARY.split(",")[:7]),  # without the checksum
    ],
)
def test_what_scanners_add_or_leave_out_is_tolerated(payload):
    assert parse_invoice_qr(payload).number == "50000001"


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ("01,04,033002600311", "it has 3 fields"),
        ("01,04,033002600311,50000001,943.40,20261101,1,A,B,C", "it has 10 fields"),
        ("02,04,033002600311,50000001,943.40,20261101,,A1B2", "version 02 is not known"),
        ("01,99,033002600311,50000001,943.40,20261101,,A1B2", "invoice type 99 is not known"),
        ("01,04,0330026003,5000001,943.40,20261101,,A1B2", "number 5000001 is not 8 digits"),
        ("01,04,03300260031,50000001,943.40,20261101,,A1B2", "code 03300260031 is not 10 or 12"),
        ("01,04,,50000001,943.40,20261101,,A1B2", "code — is not 10 or 12"),
        ("01,04,033002600311,50000001,943.4O,20261101,,A1B2", "amount 943.4O is not an amount"),
        ("01,04,033002600311,50000001,-943.40,20261101,,A1B2", "is not an amount"),
        ("01,04,033002600311,50000001,943.401,20261101,,A1B2", "is not an amount"),
        ("01,04,033002600311,50000001,943.40,20261131,,A1B2", "issue date 20261131 is not a date"),
        ("01,04,033002600311,50000001,943.40,2026-11-01,,A1B2", "is not a date"),
        ("01,04,033002600311,50000001,943.40,20261101,#$%,A1B2", "check code"),
        ("01,31,033002600311,24442000000000012345,1.00,20261101,,A", "no code and a 20-digit"),
        ("01,32,,2444200000000001234,1.00,20261101,,A", "no code and a 20-digit"),
    ],
)
def test_a_malformed_qr_code_is_refused_with_what_is_wrong(payload, says):
    with pytest.raises(InvalidInvoiceQr) as refused:
        parse_invoice_qr(payload)
    assert says in str(refused.value)
    assert "cannot be read" in str(refused.value)


def test_only_text_with_commas_is_taken_for_a_qr_code():
    assert looks_like_invoice_qr(PAPER_ORDINARY)
    assert looks_like_invoice_qr("01，04")
    assert not looks_like_invoice_qr("3300201130 10000001")


def test_a_qr_code_that_agrees_with_the_invoice_has_no_disagreement():
    qr = parse_invoice_qr(PAPER_ORDINARY)
    facts = {"amount": Decimal("943.40"), "total": Decimal("1000.00")}
    assert not invoice_qr_disagreements(qr, special=False, issued_on=dt.date(2026, 11, 1), **facts)


def test_an_issuer_printing_the_total_in_the_amount_field_is_accepted():
    qr = parse_invoice_qr(PAPER_ORDINARY.replace("943.40", "1000.00"))
    assert not invoice_qr_disagreements(
        qr,
        special=False,
        amount=Decimal("943.40"),
        total=Decimal("1000.00"),
        issued_on=dt.date(2026, 11, 1),
    )


def test_a_different_amount_date_or_type_is_each_reported():
    qr = parse_invoice_qr(PAPER_ORDINARY)
    problems = invoice_qr_disagreements(
        qr,
        special=True,
        amount=Decimal("500.00"),
        total=Decimal("530.00"),
        issued_on=dt.date(2026, 10, 31),
    )
    assert len(problems) == 3
    assert "增值税普通发票" in problems[0]
    assert "943.40" in problems[1]
    assert "500.00" in problems[1]
    assert "2026-11-01" in problems[2]
    assert "2026-10-31" in problems[2]


# --- the return slip's reference ----------------------------------------------------------------


def test_a_new_reference_carries_the_beijing_date_and_fits_the_stored_format():
    import re

    # 23:30 UTC on 30 November is 07:30 on 1 December in Beijing.
    reference = reference_new(at=dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC))
    assert reference.startswith("R261201-")
    assert re.fullmatch(REFERENCE_REGEX, reference)
    assert reference_parse(reference) == reference


def test_references_differ():
    assert len({reference_new() for _ in range(200)}) == 200


def test_every_character_of_the_alphabet_comes_up_in_every_random_position():
    # 3,000 references: a character missing from a position by chance is about 32 * e^-95.
    references = [reference_new() for _ in range(3000)]
    for position in range(8, 14):
        assert {reference[position] for reference in references} == set(ALPHABET)


def test_a_reference_is_read_as_people_type_it():
    reference = reference_new(at=dt.datetime(2026, 11, 30, 1, tzinfo=dt.UTC))
    typed = reference.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert reference_parse(typed) == reference
    assert reference_parse(reference.replace("-", "")) == reference


def test_a_mistyped_reference_is_caught_by_its_check_character():
    reference = reference_new()
    body, check = reference[:-1], reference[-1]
    for wrong in "0123456789ABCDEFGHJKMNPQRSTVWXYZ":
        if wrong != check:
            assert reference_parse(body + wrong) is None
    # One character changed anywhere in the random part.
    for position in range(8, 14):
        changed = "Z" if reference[position] != "Z" else "Y"
        assert reference_parse(reference[:position] + changed + reference[position + 1 :]) is None


@pytest.mark.parametrize("text", ["", "R", "R2611", "3300201130 10000001", "X261130-7KM4QXG"])
def test_other_text_is_no_reference(text):
    assert reference_parse(text) is None


# --- which of the three a scan is ---------------------------------------------------------------


def test_a_scan_of_a_slip_reads_the_reference():
    reference = reference_new()
    scan = scan_parse(f" {reference.lower()} ")
    assert scan.kind == ScanKind.SLIP
    assert scan.reference == reference


@pytest.mark.parametrize("text", ["3300201130 10000001", "330020113010000001"])
def test_a_scan_of_a_code_and_number_reads_both(text):
    scan = scan_parse(text)
    assert scan.kind == ScanKind.CODE_AND_NUMBER
    assert (scan.code, scan.number) == ("3300201130", "10000001")


def test_a_scan_of_an_invoice_qr_code_reads_the_code_and_number_in_it():
    scan = scan_parse(PAPER_SPECIAL)
    assert scan.kind == ScanKind.INVOICE_QR
    assert (scan.code, scan.number) == ("3300201130", "10000001")
    assert scan.qr is not None


def test_a_reference_with_a_wrong_check_character_says_so():
    reference = reference_new()
    wrong = reference[:-1] + ("Z" if reference[-1] != "Z" else "Y")
    assert reference_looks_typed(wrong)
    with pytest.raises(InvalidScan, match="is not a return slip's reference"):
        scan_parse(wrong)


@pytest.mark.parametrize("text", ["12345", "hello", "3300201130 1000000"])
def test_anything_else_is_refused_naming_what_is_accepted(text):
    with pytest.raises(InvalidScan, match="is not a return slip, an invoice's QR code"):
        scan_parse(text)


def test_an_empty_scan_is_refused():
    with pytest.raises(InvalidScan, match="Scan the return slip"):
        scan_parse("   ")

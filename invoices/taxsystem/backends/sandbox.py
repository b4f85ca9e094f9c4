"""A simulation of the e-tax platform for development and tests (``TAX_SYSTEM_BACKEND=sandbox``).

It keeps its own records (``TaxSandboxOperation``, standing for the platform's side), answers
asynchronously (a submission is pending for ``TAX_SANDBOX_DELAY_SECONDS``, 0 when Celery runs
eagerly), and enforces the platform's rules:

- a paper invoice is voided only in its month of issue (Asia/Shanghai) and before the buyer
  certified it;
- a paper special invoice is reversed only against a red-letter information form: the buyer's
  16-digit number, or one the seller files (the sandbox then files it and gives its number);
- a digital invoice (数电票) is never voided; it is reversed through a red-letter confirmation
  form (20 digits) that the sandbox enters for the seller. When the buyer booked the invoice or
  confirmed its use, the form awaits the buyer's confirmation for 72 hours (confirmed: the
  red-letter invoice is issued at once; refused or lapsed: nothing is issued). A form the buyer
  entered is confirmed by the seller's side at once;
- it issues digital invoices at once, with a PDF clearly marked as a sandbox document (paper
  invoices are printed and mailed by people: finance records those by hand);
- the same serial submitted twice acts once.

Numbers come from its own range (codes below, numbers from 50000001). ``TAX_SANDBOX_FAIL``
makes it fail on demand: ``transient:N`` refuses the first N attempts of each serial with a
transient error, ``permanent`` refuses every submission.
"""

import datetime as dt
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import sql
from invoices.models import (
    CONFIRMATION_WINDOW_HOURS,
    InvoiceMedium,
    InvoiceType,
    NumberSequence,
    TaxOperation,
    TaxSandboxOperation,
)
from invoices.taxsystem.backends.sandbox_document import sandbox_invoice_pdf
from invoices.taxsystem.interface import (
    IssuedInvoice,
    IssueResult,
    IssueSubmission,
    RedLetterIssued,
    ResultStatus,
    TaxResult,
    TaxSubmission,
    TaxSystemBackend,
    TaxSystemTransientError,
)

RED_LETTER_CODES = {InvoiceType.SPECIAL: "3300263130", InvoiceType.ORDINARY: "033002600311"}
FIRST_NUMBER = 50000000  # the sandbox's own range: numbers from 50000001
SELLER_FORM_PREFIX = "33010"  # the sandbox's tax office in the seller-filed form numbers

VOID_REFUSED = (
    "作废失败：纸质发票仅可在开具当月且购买方未认证时作废。"
    " A paper invoice can be voided only in its month of issue and before certification."
)
FORM_REQUIRED = (
    "红冲失败：增值税专用发票须凭红字发票信息表开具红字发票。"
    " A special invoice is reversed only against a red-letter information form."
)
DIGITAL_VOID_REFUSED = (
    "作废失败：数电票不能作废，只能红冲。"
    " A fully digitalized e-invoice is never voided, only reversed."
)
PERMANENT = "开票服务拒绝请求（沙箱模拟）。 Refused by the sandbox on request (TAX_SANDBOX_FAIL)."
# Digital numbers: year, the sandbox's tax office (33), channel, then a counter; 20 digits.
DIGITAL_PREFIX = "332000"
CONFIRMATION_FORM_PREFIX = "3301"


def _next(name: str, start: int) -> int:
    """The counter's next value in one statement: made at ``start + 1`` the first time, else
    incremented under its row's lock, held until the caller's transaction ends (gap-free).
    Three ORM statements did the same: a reversal's two numbers took 9% of its processing's
    CPU in a profile (issue 16, P3)."""
    meta = NumberSequence._meta
    quote = connection.ops.quote_name
    table, key, value = (quote(str(name)) for name in (meta.db_table, meta.pk.column, "last_value"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({key}, {value}) VALUES (%s, %s) "  # noqa: S608 - metadata
            f"ON CONFLICT ({key}) DO UPDATE SET {value} = {table}.{value} + 1 "
            f"RETURNING {value}",
            [name, start + 1],
        )
        return int(cursor.fetchone()[0])


@cache
def _operation_counted_sql() -> str:
    meta = TaxSandboxOperation._meta
    quote = connection.ops.quote_name
    table, serial, attempts = (quote(str(n)) for n in (meta.db_table, "serial", "attempts"))
    return (
        f"INSERT INTO {table} ({sql.insert_columns(TaxSandboxOperation)}) "  # noqa: S608
        f"VALUES ({sql.insert_placeholders(TaxSandboxOperation)}) "
        f"ON CONFLICT ({serial}) DO UPDATE SET {attempts} = {table}.{attempts} + 1 "
        f"RETURNING {sql.columns(TaxSandboxOperation, table)}"
    )


def _operation_counted(submission: TaxSubmission) -> TaxSandboxOperation:
    """The platform's record of the serial with this submission counted, its row locked until
    the transaction ends: made by the first submission, found by a second one (or one at the
    same moment, which waits), in one statement (the ORM's three cost a return more CPU than
    the database spent on them, issue 16)."""
    new = TaxSandboxOperation(serial=submission.serial, payload=_payload(submission), attempts=1)
    with connection.cursor() as cursor:
        cursor.execute(_operation_counted_sql(), sql.insert_values(new))
        return sql.instance(TaxSandboxOperation, cursor.fetchone())


def _local_today(now: dt.datetime) -> dt.date:
    return now.astimezone(ZoneInfo(settings.BUSINESS_TIME_ZONE)).date()


def _digital_number(today: dt.date) -> str:
    """A 数电票 number from the sandbox's range: 20 digits, blue and red from one counter."""
    return f"{today:%y}{DIGITAL_PREFIX}{_next('sandbox:digital', 0):012d}"


def _confirmation_form_number(today: dt.date) -> str:
    """A red-letter confirmation form number: 20 digits."""
    return f"{CONFIRMATION_FORM_PREFIX}{today:%y%m%d}{_next('sandbox:confirmation', 0):010d}"


class SandboxTaxSystem(TaxSystemBackend):
    name: ClassVar[str] = "sandbox"

    @property
    def poll_after_seconds(self) -> float:
        return float(settings.TAX_SANDBOX_DELAY_SECONDS)

    def submit(self, submission: TaxSubmission) -> TaxResult:
        mode, _sep, count = (settings.TAX_SANDBOX_FAIL or "").partition(":")
        with transaction.atomic():
            operation = _operation_counted(submission)
            busy = mode == "transient" and operation.attempts <= int(count or 1)
            if not busy and operation.result is None:
                operation.result = self._decide(submission)
                delay = dt.timedelta(seconds=float(settings.TAX_SANDBOX_DELAY_SECONDS))
                operation.ready_at = timezone.now() + delay
                operation.save(update_fields=["result", "ready_at"])
        if busy:
            raise TaxSystemTransientError(
                f"sandbox: platform busy, attempt {operation.attempts} (TAX_SANDBOX_FAIL)"
            )
        return _answer(submission.serial, operation)  # what a query now would say

    def query(self, serial: str) -> TaxResult:
        return _answer(serial, TaxSandboxOperation.objects.filter(serial=serial).first())

    simulates_buyer: ClassVar[bool] = True

    def simulate_buyer_decision(self, serial: str, *, confirmed: bool) -> None:
        """The buyer confirms (the red-letter invoice is issued at once) or refuses the form
        on its e-tax platform. Only a form still awaiting the buyer takes a decision."""
        with transaction.atomic():
            operation = TaxSandboxOperation.objects.select_for_update().get(serial=serial)
            result = operation.result or {}
            if result.get("status") != ResultStatus.AWAITING_BUYER:
                return
            if timezone.now() >= dt.datetime.fromisoformat(result["confirm_by"]):
                return  # lapsed: the platform takes no decision any more
            if confirmed:
                payload = operation.payload
                operation.result = self._red_letter(
                    payload["original"], form_number=result["form_number"]
                )
            else:
                operation.result = {
                    "status": ResultStatus.BUYER_REFUSED,
                    "form_number": result["form_number"],
                }
            operation.save(update_fields=["result"])

    def issues_by_itself(self, medium: str) -> bool:
        return medium == InvoiceMedium.DIGITAL

    def issue(self, submission: IssueSubmission) -> IssueResult:
        """A digital invoice is issued at once (the same serial gives the same invoice); a paper
        one is printed and mailed by people, who record it by hand."""
        if submission.medium != InvoiceMedium.DIGITAL:
            return IssueResult(serial=submission.serial, status=ResultStatus.PENDING)
        with transaction.atomic():
            operation, _created = TaxSandboxOperation.objects.select_for_update().get_or_create(
                serial=submission.serial, defaults={"payload": {"operation": "issue"}}
            )
            operation.attempts += 1
            if operation.result is None:
                now = timezone.now()
                operation.result = {
                    "status": ResultStatus.DONE,
                    "number": _digital_number(_local_today(now)),
                    "issued_at": now.isoformat(),
                }
                operation.ready_at = now
            operation.save(update_fields=["attempts", "result", "ready_at"])
        number = operation.result["number"]
        issued_at = dt.datetime.fromisoformat(operation.result["issued_at"])
        document = sandbox_invoice_pdf(submission, number=number, issued_at=issued_at)
        return IssueResult(
            serial=submission.serial,
            status=ResultStatus.DONE,
            invoice=IssuedInvoice(
                code="",
                number=number,
                issued_at=issued_at,
                document=document,
                document_name=f"{number}.pdf",
            ),
        )

    def _decide(self, submission: TaxSubmission) -> dict[str, Any]:
        """What the platform does with the submission, written when it is first accepted."""
        if (settings.TAX_SANDBOX_FAIL or "") == "permanent":
            return {"status": "refused", "error": PERMANENT}
        now = timezone.now()
        today = _local_today(now)
        original = submission.original
        if submission.operation == TaxOperation.VOID and original.medium == InvoiceMedium.DIGITAL:
            return {"status": "refused", "error": DIGITAL_VOID_REFUSED}
        if original.medium == InvoiceMedium.DIGITAL:
            return self._digital_reversal(submission, now=now, today=today)
        if submission.operation == TaxOperation.VOID:
            same_month = (original.issued_on.year, original.issued_on.month) == (
                today.year,
                today.month,
            )
            if not same_month or submission.buyer_certified:
                return {"status": "refused", "error": VOID_REFUSED}
            return {"status": "done", "voided_on": today.isoformat()}
        form_number = ""
        if original.invoice_type == InvoiceType.SPECIAL:
            if submission.red_letter_form_number:
                form_number = submission.red_letter_form_number
            elif submission.seller_files_form:
                form_number = (
                    f"{SELLER_FORM_PREFIX}{today:%y%m%d}" + (f"{_next('sandbox:form', 0):05d}"[-5:])
                )
            else:
                return {"status": "refused", "error": FORM_REQUIRED}
        return self._red_letter(_payload(submission)["original"], form_number=form_number)

    def _digital_reversal(
        self, submission: TaxSubmission, *, now: dt.datetime, today: dt.date
    ) -> dict[str, Any]:
        """数电票: the seller confirms a form the buyer entered; otherwise it enters one, which
        the buyer must confirm when it booked the invoice or confirmed its use."""
        payload = _payload(submission)
        if submission.buyer_entered_form:
            return self._red_letter(
                payload["original"], form_number=submission.red_letter_form_number
            )
        form_number = _confirmation_form_number(today)
        if not submission.buyer_booked:
            return self._red_letter(payload["original"], form_number=form_number)
        confirm_by = now + dt.timedelta(hours=CONFIRMATION_WINDOW_HOURS)
        return {
            "status": ResultStatus.AWAITING_BUYER,
            "form_number": form_number,
            "confirm_by": confirm_by.isoformat(),
        }

    def _red_letter(self, original: dict[str, Any], *, form_number: str) -> dict[str, Any]:
        """The full red-letter invoice: the original's figures negated, numbered now."""
        today = _local_today(timezone.now())
        if original["medium"] == InvoiceMedium.DIGITAL:
            code, number = "", _digital_number(today)
        else:
            code = RED_LETTER_CODES[InvoiceType(original["invoice_type"])]
            number = f"{_next(f'sandbox:{code}', FIRST_NUMBER):08d}"
        return {
            "status": "done",
            "red_letter": {
                "code": code,
                "number": number,
                "issued_on": today.isoformat(),
                "amount": str(-Decimal(original["amount"])),
                "tax_rate": original["tax_rate"],
                "tax": str(-Decimal(original["tax"])),
                "total": str(-Decimal(original["total"])),
                "red_letter_form_number": form_number,
            },
        }


def _payload(submission: TaxSubmission) -> dict[str, Any]:
    original = submission.original
    return {
        "operation": submission.operation,
        "original": {
            "code": original.code,
            "number": original.number,
            "medium": original.medium,
            "invoice_type": original.invoice_type,
            "amount": str(original.amount),
            "tax_rate": str(original.tax_rate),
            "tax": str(original.tax),
            "total": str(original.total),
        },
        "reason_code": submission.reason_code,
        "buyer_certified": submission.buyer_certified,
        "red_letter_form_number": submission.red_letter_form_number,
        "seller_files_form": submission.seller_files_form,
        "buyer_booked": submission.buyer_booked,
        "buyer_entered_form": submission.buyer_entered_form,
    }


def _buyer_outcome(serial: str, result: dict[str, Any]) -> TaxResult:
    """A form awaiting the buyer: still waiting, or lapsed after 72 hours."""
    confirm_by = dt.datetime.fromisoformat(result["confirm_by"])
    if timezone.now() >= confirm_by:
        return TaxResult.buyer_declined(serial, ResultStatus.EXPIRED, result["form_number"])
    return TaxResult.awaiting_buyer(serial, result["form_number"], confirm_by)


def _result_from_json(serial: str, data: dict[str, Any]) -> TaxResult:
    if data["status"] == ResultStatus.REFUSED:
        return TaxResult.refused(serial, data["error"])
    if data["status"] == ResultStatus.BUYER_REFUSED:
        return TaxResult.buyer_declined(serial, ResultStatus.BUYER_REFUSED, data["form_number"])
    if "voided_on" in data:
        return TaxResult.voided(serial, dt.date.fromisoformat(data["voided_on"]))
    red = data["red_letter"]
    return TaxResult.reversed(
        serial,
        RedLetterIssued(
            code=red["code"],
            number=red["number"],
            issued_on=dt.date.fromisoformat(red["issued_on"]),
            amount=Decimal(red["amount"]),
            tax_rate=Decimal(red["tax_rate"]),
            tax=Decimal(red["tax"]),
            total=Decimal(red["total"]),
            red_letter_form_number=red["red_letter_form_number"],
        ),
    )


def _answer(serial: str, operation: TaxSandboxOperation | None) -> TaxResult:
    """The platform's answer about a submission, from its record."""
    if operation is None or operation.result is None or operation.ready_at is None:
        return TaxResult.pending(serial)
    if timezone.now() < operation.ready_at:
        return TaxResult.pending(serial)
    if operation.result["status"] == ResultStatus.AWAITING_BUYER:
        return _buyer_outcome(serial, operation.result)
    return _result_from_json(serial, operation.result)

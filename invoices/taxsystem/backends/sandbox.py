"""A simulation of the e-tax platform for development and tests (``TAX_SYSTEM_BACKEND=sandbox``).

It keeps its own records (``TaxSandboxOperation``, standing for the platform's side), answers
asynchronously (a submission is pending for ``TAX_SANDBOX_DELAY_SECONDS``, 0 when Celery runs
eagerly), and enforces the platform's rules:

- a paper invoice is voided only in its month of issue (Asia/Shanghai) and before the buyer
  certified it;
- a paper special invoice is reversed only against a red-letter information form: the buyer's
  16-digit number, or one the seller files (the sandbox then files it and gives its number);
- the same serial submitted twice acts once.

Numbers come from its own range (codes below, numbers from 50000001). ``TAX_SANDBOX_FAIL``
makes it fail on demand: ``transient:N`` refuses the first N attempts of each serial with a
transient error, ``permanent`` refuses every submission.
"""

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from invoices.models import (
    InvoiceType,
    NumberSequence,
    TaxOperation,
    TaxSandboxOperation,
)
from invoices.taxsystem.interface import (
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
PERMANENT = "开票服务拒绝请求（沙箱模拟）。 Refused by the sandbox on request (TAX_SANDBOX_FAIL)."


def _next(name: str, start: int) -> int:
    NumberSequence.objects.get_or_create(name=name, defaults={"last_value": start})
    sequence = NumberSequence.objects.select_for_update().get(name=name)
    sequence.last_value += 1
    sequence.save(update_fields=["last_value"])
    return sequence.last_value


def _local_today(now: dt.datetime) -> dt.date:
    return now.astimezone(ZoneInfo(settings.BUSINESS_TIME_ZONE)).date()


class SandboxTaxSystem(TaxSystemBackend):
    name: ClassVar[str] = "sandbox"

    @property
    def poll_after_seconds(self) -> float:
        return float(settings.TAX_SANDBOX_DELAY_SECONDS)

    def submit(self, submission: TaxSubmission) -> TaxResult:
        mode, _sep, count = (settings.TAX_SANDBOX_FAIL or "").partition(":")
        with transaction.atomic():
            operation, _created = TaxSandboxOperation.objects.select_for_update().get_or_create(
                serial=submission.serial, defaults={"payload": _payload(submission)}
            )
            operation.attempts += 1
            busy = mode == "transient" and operation.attempts <= int(count or 1)
            if not busy and operation.result is None:
                operation.result = self._decide(submission)
                delay = dt.timedelta(seconds=float(settings.TAX_SANDBOX_DELAY_SECONDS))
                operation.ready_at = timezone.now() + delay
            operation.save(update_fields=["attempts", "result", "ready_at"])
        if busy:
            raise TaxSystemTransientError(
                f"sandbox: platform busy, attempt {operation.attempts} (TAX_SANDBOX_FAIL)"
            )
        return self.query(submission.serial)

    def query(self, serial: str) -> TaxResult:
        operation = TaxSandboxOperation.objects.filter(serial=serial).first()
        if operation is None or operation.result is None or operation.ready_at is None:
            return TaxResult.pending(serial)
        if timezone.now() < operation.ready_at:
            return TaxResult.pending(serial)
        return _result_from_json(serial, operation.result)

    def _decide(self, submission: TaxSubmission) -> dict[str, Any]:
        """What the platform does with the submission, written when it is first accepted."""
        if (settings.TAX_SANDBOX_FAIL or "") == "permanent":
            return {"status": "refused", "error": PERMANENT}
        now = timezone.now()
        today = _local_today(now)
        original = submission.original
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
        code = RED_LETTER_CODES[InvoiceType(original.invoice_type)]
        return {
            "status": "done",
            "red_letter": {
                "code": code,
                "number": f"{_next(f'sandbox:{code}', FIRST_NUMBER):08d}",
                "issued_on": today.isoformat(),
                "amount": str(-original.amount),
                "tax_rate": str(original.tax_rate),
                "tax": str(-original.tax),
                "total": str(-original.total),
                "red_letter_form_number": form_number,
            },
        }


def _payload(submission: TaxSubmission) -> dict[str, Any]:
    original = submission.original
    return {
        "operation": submission.operation,
        "original": {"code": original.code, "number": original.number},
        "reason_code": submission.reason_code,
        "buyer_certified": submission.buyer_certified,
        "red_letter_form_number": submission.red_letter_form_number,
        "seller_files_form": submission.seller_files_form,
    }


def _result_from_json(serial: str, data: dict[str, Any]) -> TaxResult:
    if data["status"] == ResultStatus.REFUSED:
        return TaxResult.refused(serial, data["error"])
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

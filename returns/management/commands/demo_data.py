"""Demo data for `make run`: log-ins for the three audiences and invoices to return.

Idempotent: running it again changes nothing and prints the same log-ins.
"""

import datetime as dt
import io
import os
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from invoices.models import Customer, CustomerKind, InvoiceType, Statement
from invoices.services import (
    business_tz,
    invoice_application_create,
    invoice_issue,
    invoice_record_marketplace,
    statement_settle,
)
from returns.models import ReturnRequest
from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF, role_groups_sync
from returns.services import mail_receipt_log, return_request_submit

DEFAULT_PASSWORD = "demo-pass-2026"
DEMO_USCC = "91330106MA2H0K1W7W"
SPECIAL = {
    "taxpayer_id": DEMO_USCC,
    "registered_address": "88 Wensan Road, Xihu District, Hangzhou",
    "registered_phone": "0571-88886666",
    "bank_name": "Bank of Hangzhou, Xihu Sub-branch",
    "bank_account": "3301040160012345678",
}
MAILING = {
    "mailing_recipient": "Wang Fang",
    "mailing_phone": "13800138000",
    "mailing_address": "88 Wensan Road, Xihu District, Hangzhou",
    "mailing_postal_code": "310012",
}


def _month_start(day: dt.date, months_back: int) -> dt.date:
    year, month = day.year, day.month - months_back
    while month < 1:
        month += 12
        year -= 1
    return dt.date(year, month, 1)


class Command(BaseCommand):
    help = "Create demo log-ins and invoices (idempotent)."

    def handle(self, *args, **options) -> None:
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_PASSWORD
        with transaction.atomic():
            customer = self._users(password)
            if not customer.invoices.exists():
                self._invoices(customer)
            if not ReturnRequest.objects.filter(invoice__customer=customer).exists():
                self._back_office(customer)
        origin = "DEMO_PASSWORD" if os.environ.get("DEMO_PASSWORD") else "default"
        self.stdout.write(
            "\nLog in at http://127.0.0.1:8000/accounts/login/ "
            f"(password, {origin}: {password})\n"
            "  demo-customer  the customer: http://127.0.0.1:8000/billing/invoices/\n"
            "  demo-finance   finance staff: http://127.0.0.1:8000/admin/\n"
            "  demo-reviewer  admin reviewer: http://127.0.0.1:8000/admin/\n"
        )

    def _user(self, username: str, password: str, *, staff: bool):
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"is_staff": staff}
        )
        if created or not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        return user

    def _users(self, password: str) -> Customer:
        # The groups come from a data migration; a flushed test database lacks them.
        role_groups_sync(group_model=Group, permission_model=Permission)
        self._user("demo-finance", password, staff=True).groups.add(
            Group.objects.get(name=FINANCE_STAFF)
        )
        self._user("demo-reviewer", password, staff=True).groups.add(
            Group.objects.get(name=ADMIN_REVIEWERS)
        )
        user = self._user("demo-customer", password, staff=False)
        customer, _ = Customer.objects.get_or_create(
            user=user,
            defaults={
                "name": "Hangzhou Demo Technology Co., Ltd.",
                "kind": CustomerKind.ENTERPRISE,
                "taxpayer_id": DEMO_USCC,
                "mobile": "+8613800138000",
                "language": "zh-hans",
            },
        )
        return customer

    def _invoices(self, customer: Customer) -> None:
        now = timezone.now()
        today = now.astimezone(business_tz()).date()
        for months_back in (3, 2, 1):
            statement = Statement.objects.create(
                customer=customer,
                period=_month_start(today, months_back),
                amount=Decimal("60000.00"),
            )
            statement_settle(statement_id=statement.pk)

        this_month = now - dt.timedelta(minutes=5)
        last_month = dt.datetime.combine(
            _month_start(today, 1) + dt.timedelta(days=14), dt.time(10), tzinfo=business_tz()
        )
        earlier = dt.datetime.combine(
            _month_start(today, 2) + dt.timedelta(days=9), dt.time(15), tzinfo=business_tz()
        )
        plan = [
            (InvoiceType.SPECIAL, "12800.00", this_month, "00000001"),
            (InvoiceType.ORDINARY, "3560.50", this_month, "00000002"),
            (InvoiceType.SPECIAL, "21000.00", last_month, "00000003"),
            (InvoiceType.ORDINARY, "999.99", earlier, "00000004"),
            (InvoiceType.SPECIAL, "4500.00", earlier, "00000005"),
        ]
        for invoice_type, amount, issued_at, number in plan:
            extra = SPECIAL if invoice_type == InvoiceType.SPECIAL else {"taxpayer_id": DEMO_USCC}
            application = invoice_application_create(
                customer_id=customer.pk,
                invoice_type=invoice_type,
                title=customer.name,
                amount=amount,
                **MAILING,
                **extra,
            )
            invoice_issue(
                application_id=application.pk,
                code="3300261130",
                number=number,
                issued_at=issued_at,
                courier="SF Express",
                tracking_number=f"SF10{number}",
            )
        # One application still waiting for finance to issue it.
        invoice_application_create(
            customer_id=customer.pk,
            invoice_type=InvoiceType.ORDINARY,
            title=customer.name,
            amount="1200.00",
            taxpayer_id=DEMO_USCC,
            **MAILING,
        )
        invoice_record_marketplace(
            customer_id=customer.pk,
            issuer_name="Shanghai Example SaaS Co., Ltd. (Cloud Market)",
            invoice_type=InvoiceType.ORDINARY,
            title=customer.name,
            amount="688.00",
            code="3100261130",
            number="70000001",
            issued_at=last_month,
        )

    def _back_office(self, customer: Customer) -> None:
        """Work waiting in the back office: a return awaiting paper, a certified special
        invoice whose paper is in and whose red-letter form awaits review (the pending
        application above waits to be issued)."""
        finance = get_user_model().objects.get(username="demo-finance")
        awaiting_paper = customer.invoices.get(number="00000002")
        return_request_submit(
            invoice_id=awaiting_paper.pk,
            customer_id=customer.pk,
            actor=customer.user,
            reason="The invoice title is missing 'Co., Ltd.'",
            problem="title",
            courier="SF Express",
            tracking_number="SF2026000002",
        )
        certified = customer.invoices.get(number="00000003")
        return_request_submit(
            invoice_id=certified.pk,
            customer_id=customer.pk,
            actor=customer.user,
            reason="Wrong bank account on the invoice",
            problem="address",
            certified=True,
            red_letter_form=SimpleUploadedFile("form.png", _form_scan(), "image/png"),
            red_letter_form_number="4403262600012345",
        )
        mail_receipt_log(
            invoice_code=certified.code,
            invoice_number=certified.number,
            actor=finance,
            invoice_form_present=True,
            deduction_form_present=True,
            undamaged=True,
            courier="EMS",
            tracking_number="EMS2026000003",
        )


def _form_scan() -> bytes:
    """A stand-in scan of a red-letter information form (PNG)."""
    image = Image.new("RGB", (640, 400), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, 630, 390), outline="red", width=3)
    draw.text((30, 30), "Red-letter information form (demo)", fill="red")
    draw.text((30, 60), "No. 4403262600012345", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()

"""factory-boy factories. Rows that move money are made through the services (so the ledger
stays true); plain rows through factories."""

import datetime as dt
import itertools
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from invoices.models import (
    Customer,
    CustomerKind,
    Invoice,
    InvoiceMedium,
    InvoiceType,
    LedgerEntry,
    LedgerKind,
    Statement,
)
from invoices.services import (
    invoice_application_create,
    invoice_issue,
    invoice_record_marketplace,
    statement_settle,
)

VALID_USCC = "91110000600037341L"
_invoice_numbers = itertools.count(10000001)
_digital_numbers = itertools.count(26330000000000000001)
# What a digital invoice file starts with: enough for the services' PDF check.
DIGITAL_INVOICE_PDF = b"%PDF-1.4\n% a digital invoice for tests\n%%EOF\n"


class UserFactory(factory.django.DjangoModelFactory[get_user_model()]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-1")


class CustomerFactory(factory.django.DjangoModelFactory[Customer]):
    class Meta:
        model = Customer

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Hangzhou Example Trading Co. {n}")
    kind = CustomerKind.ENTERPRISE
    taxpayer_id = VALID_USCC
    mobile = factory.Sequence(lambda n: f"+86138{n:08d}")
    language = "en"


class StatementFactory(factory.django.DjangoModelFactory[Statement]):
    class Meta:
        model = Statement

    customer = factory.SubFactory(CustomerFactory)
    period = factory.Sequence(lambda n: dt.date(2020 + n // 12, n % 12 + 1, 1))
    amount = Decimal("10000.00")


def fund(customer: Customer, amount: Decimal | str = "10000.00") -> None:
    """Give a customer invoiceable amount the way production does: a settled statement."""
    statement = StatementFactory(customer=customer, amount=Decimal(amount))
    statement_settle(statement_id=statement.pk)


def take_return_credit(invoice: Invoice) -> LedgerEntry:
    """The invoice's one return credit, taken already: the database then refuses the credit of
    any outcome recorded for it (``ledger_one_credit_per_returned_invoice``), the way to make
    recording an outcome fail inside its transaction."""
    return LedgerEntry.objects.create(
        customer_id=invoice.customer_id,
        kind=LedgerKind.INVOICE_RETURNED,
        amount=invoice.total,
        invoice=invoice,
    )


def special_fields() -> dict[str, str]:
    return {
        "taxpayer_id": VALID_USCC,
        "registered_address": "1 Example Road, Hangzhou",
        "registered_phone": "0571-88888888",
        "bank_name": "Bank of Hangzhou",
        "bank_account": "6222020200112233445",
    }


def mailing_fields() -> dict[str, str]:
    return {
        "mailing_recipient": "Li Lei",
        "mailing_phone": "13800138000",
        "mailing_address": "2 Example Street, Hangzhou",
        "mailing_postal_code": "310000",
    }


def issue_invoice(
    customer: Customer,
    *,
    invoice_type: str = InvoiceType.ORDINARY,
    amount: str = "1000.00",
    issued_at: dt.datetime | None = None,
    fund_first: bool = True,
) -> Invoice:
    """Apply for and issue a provider invoice through the services."""
    if fund_first:
        fund(customer, amount)
    application = invoice_application_create(
        customer_id=customer.pk,
        invoice_type=invoice_type,
        title=customer.name,
        amount=amount,
        **mailing_fields(),
        **(
            special_fields() if invoice_type == InvoiceType.SPECIAL else {"taxpayer_id": VALID_USCC}
        ),
    )
    return invoice_issue(
        application_id=application.pk,
        code="3300201130",
        number=f"{next(_invoice_numbers):08d}",
        issued_at=issued_at or timezone.now(),
    )


def issue_digital_invoice(
    customer: Customer,
    *,
    invoice_type: str = InvoiceType.ORDINARY,
    amount: str = "1000.00",
    issued_at: dt.datetime | None = None,
    email: str = "",
) -> Invoice:
    """Apply for and issue a digital invoice (数电票) through the services, as finance records
    one the tax system issued (the sandbox's own issuing is tested on its own)."""
    fund(customer, amount)
    application = invoice_application_create(
        customer_id=customer.pk,
        invoice_type=invoice_type,
        medium=InvoiceMedium.DIGITAL,
        title=customer.name,
        amount=amount,
        email=email,
        mailing_recipient="",
        mailing_phone="",
        mailing_address="",
        **(
            special_fields() if invoice_type == InvoiceType.SPECIAL else {"taxpayer_id": VALID_USCC}
        ),
    )
    return invoice_issue(
        application_id=application.pk,
        code="",
        number=f"{next(_digital_numbers):020d}",
        issued_at=issued_at or timezone.now(),
        document=DIGITAL_INVOICE_PDF,
        document_name="invoice.pdf",
    )


def staff_in_role(role: str, *, username: str):
    """A staff user in one of the back-office role groups (returns.roles)."""
    from django.contrib.auth.models import Group, Permission

    from returns.roles import role_groups_sync

    # The groups come from a data migration; transactional tests flush them, so sync here.
    role_groups_sync(group_model=Group, permission_model=Permission)
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def marketplace_invoice(customer: Customer, **overrides) -> Invoice:
    """An invoice issued by a Cloud Market seller: shown to the customer, never returned here."""
    fields = {
        "issuer_name": "Example Market Seller Ltd.",
        "invoice_type": InvoiceType.ORDINARY,
        "title": customer.name,
        "amount": "300.00",
        "code": "3300201130",
        "number": "77000001",
        "issued_at": timezone.now(),
    } | overrides
    return invoice_record_marketplace(customer_id=customer.pk, **fields)


def staff_actor(username: str = "clerk"):
    """A staff member acting in the back office (a typed actor, core.audit.actor)."""
    from django.contrib.auth.models import User

    from core.audit.actor import Actor

    user = User.objects.filter(username=username).first() or UserFactory(
        username=username, is_staff=True
    )
    return Actor.staff(user)

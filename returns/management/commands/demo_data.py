"""Demo data for `make run`: log-ins for the three audiences, and months of believable history
for two Chinese companies, with a return in every state.

The story (``_demo_story.STORY``) is played through the real services, each step with the
business clock set to when it happened: the application before the invoice, the invoice before
its return, the paper after the return, the tax system's answer after the paper. Whatever the
services write (ledger entries, audit events, the void-or-reverse decision, the sandbox's
red-letter invoice and its date, SMS) is therefore what it would have been on that day.

Idempotent: each step is recognised by what it made (a statement's month, an invoice's code
and number, an invoice's return) and skipped when already there, so a second run — on the same
day or months later — changes nothing and prints the same log-ins. Each step is one
transaction, with its tax-system settings around it, so tasks that run on commit (Celery eager,
as `make run` has it) see the same settings.
"""

import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any
from unittest import mock

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Max, QuerySet
from django.test import override_settings
from django.utils import timezone

from core.audit.actor import Actor
from invoices.models import (
    ApplicationState,
    Customer,
    CustomerKind,
    Invoice,
    InvoiceApplication,
    InvoiceMedium,
    InvoiceState,
    Issuer,
    Statement,
)
from invoices.services import (
    invoice_application_create,
    invoice_issue,
    invoice_record_marketplace,
    statement_settle,
)
from invoices.taxsystem.services import tax_invoice_issue
from invoices.workdays import business_tz
from returns.management.commands._demo_story import (
    COMPANIES,
    HANGZHOU,
    MARKETPLACE_ISSUER,
    MARKETPLACE_NUMBER,
    SF,
    SHANGHAI,
    STORY,
    Calendar,
    Company,
    Paper,
    PlannedInvoice,
    PlannedStatement,
    Return,
    When,
    buyer_form_number,
    form_scan,
    invoice_code,
    marketplace_code,
    month_start,
)
from returns.models import (
    BLOCKING_STATES,
    FormReviewState,
    MailReceipt,
    RedLetterForm,
    ReturnRequest,
    ReturnState,
)
from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF, role_groups_sync
from returns.selectors import returns_awaiting_paper, returns_awaiting_tax_system
from returns.services import (
    mail_receipt_log,
    return_request_cancel,
    return_request_process,
    return_request_simulate_buyer,
    return_request_submit,
    return_tax_poll,
    return_tax_submit,
)

DEFAULT_PASSWORD = "demo-pass-2026"
SITE = "http://127.0.0.1:8000"


class BusinessClock:
    """``timezone.now()`` as it was when a step of the story happened, moving on in real time
    from there (so the rows a step writes keep their order)."""

    def __init__(self) -> None:
        self._real_now = timezone.now
        self._offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return self._real_now() + self._offset

    def set(self, moment: dt.datetime) -> dt.datetime:
        self._offset = moment - self._real_now()
        return moment

    @contextmanager
    def running(self) -> Iterator["BusinessClock"]:
        with mock.patch("django.utils.timezone.now", self.now):
            yield self


@dataclass(frozen=True)
class Step:
    at: dt.datetime
    done: Callable[[], bool]
    run: Callable[[], object]
    settings: dict[str, Any]


class Command(BaseCommand):
    help = "Create demo log-ins and months of demo invoices and returns (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Run although DJANGO_DEBUG is false; DEMO_PASSWORD must then be set.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Demo log-ins include staff: never with the published password outside development.
        if not settings.DEBUG:
            if not options["allow_production"]:
                raise CommandError(
                    "demo_data refuses to run when DJANGO_DEBUG is false (production); pass "
                    "--allow-production and set DEMO_PASSWORD to run it anyway."
                )
            if not os.environ.get("DEMO_PASSWORD") or (
                os.environ["DEMO_PASSWORD"] == DEFAULT_PASSWORD
            ):
                raise CommandError(
                    "demo_data --allow-production needs DEMO_PASSWORD set (not the published "
                    "demo password)."
                )
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_PASSWORD
        self._staff(password)
        users = {company.username: self._user(company.username, password) for company in COMPANIES}
        legacy = Customer.objects.filter(user__username=HANGZHOU.username).exclude(
            name=HANGZHOU.name
        )
        if legacy.exists():
            self.stdout.write(
                "demo_data: this database holds demo data from an earlier version; it is left "
                "as it is (delete db.sqlite3 for the current demo)."
            )
        else:
            self._play(users)
        self._banner(password, from_env=bool(os.environ.get("DEMO_PASSWORD")))

    # --- Log-ins ---------------------------------------------------------------------------

    def _user(self, username: str, password: str, *, staff: bool = False) -> User:
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": staff}
        )
        if created or not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        return user

    def _staff(self, password: str) -> None:
        # The groups come from a data migration; a flushed test database lacks them.
        role_groups_sync(group_model=Group, permission_model=Permission)
        self._user("demo-finance", password, staff=True).groups.add(
            Group.objects.get(name=FINANCE_STAFF)
        )
        self._user("demo-reviewer", password, staff=True).groups.add(
            Group.objects.get(name=ADMIN_REVIEWERS)
        )

    # --- The story -------------------------------------------------------------------------

    def _play(self, users: dict[str, User]) -> None:
        calendar = self._calendar()
        self.calendar = calendar
        self.users = users
        self.finance = get_user_model().objects.get(username="demo-finance")
        steps = self._steps(calendar)
        self.clock = BusinessClock()
        with self.clock.running():
            for step in sorted(steps, key=lambda s: s.at):
                if step.done():
                    continue
                self.clock.set(step.at)
                with override_settings(**step.settings), transaction.atomic():
                    step.run()

    def _calendar(self) -> Calendar:
        """Anchored in the month of the first run, found again from the statements it made."""
        tz = business_tz()
        now = timezone.now().astimezone(tz)
        latest = Statement.objects.filter(customer__user__username=HANGZHOU.username).aggregate(
            period=Max("period")
        )["period"]
        if latest is None:
            return Calendar(month=now.date(), now=now, tz=tz)
        anchor = month_start(latest + dt.timedelta(days=45), 0)  # the month after the last bill
        end_of_anchor = dt.datetime.combine(
            month_start(anchor + dt.timedelta(days=45), 0), dt.time(), tzinfo=tz
        ) - dt.timedelta(seconds=1)
        return Calendar(month=anchor, now=min(now, end_of_anchor), tz=tz)

    def _steps(self, calendar: Calendar) -> list[Step]:
        """Every step of the story, with what shows it is done already."""
        at = calendar.at
        sandbox = {"TAX_SANDBOX_DELAY_SECONDS": 0}  # answered at once, whatever the broker
        steps = [
            Step(
                at(company.registered),
                partial(self._registered, company),
                partial(self._register, company),
                {},
            )
            for company in COMPANIES
        ]
        steps += [
            Step(at(s.settled), partial(self._settled, s), partial(self._settle, s), {})
            for s in STORY.statements
        ]
        for planned in STORY.invoices:
            digital = planned.medium == InvoiceMedium.DIGITAL
            code = "" if digital else invoice_code(planned.invoice_type, calendar.month)
            steps.append(
                Step(
                    at(planned.applied),
                    partial(self._issued_planned, planned, code),
                    partial(self._invoice, planned, code),
                    # The sandbox tax platform issues digital invoices, whatever the setting.
                    sandbox | {"TAX_SYSTEM_BACKEND": "sandbox"} if digital else {},
                )
            )
            if planned.returned is not None:
                steps.append(
                    Step(
                        at(planned.returned.submitted),
                        partial(self._returned_planned, planned, code),
                        partial(self._return, code, planned, planned.returned),
                        sandbox
                        | {
                            "TAX_SYSTEM_BACKEND": planned.returned.tax_system,
                            "TAX_SANDBOX_FAIL": planned.returned.tax_sandbox_fail,
                        },
                    )
                )
            if planned.paper_first is not None:
                steps.append(
                    Step(
                        at(planned.paper_first.received),
                        partial(self._paper_logged, code, planned.number),
                        partial(self._paper, code, planned.number, planned.paper_first),
                        sandbox,
                    )
                )
        steps += [
            Step(
                at(applied),
                partial(self._applied, company, total),
                partial(self._apply, company, invoice_type, total),
                {},
            )
            for company, invoice_type, total, applied in STORY.pending
        ]
        code = marketplace_code(calendar.month)
        steps += [
            Step(
                at(issued),
                partial(self._issued, code, MARKETPLACE_NUMBER),
                partial(self._marketplace, company, invoice_type, total, code),
                {},
            )
            for company, invoice_type, total, issued in STORY.marketplace
        ]
        return steps

    # What shows that a step is done.

    def _registered(self, company: Company) -> bool:
        return Customer.objects.filter(user__username=company.username).exists()

    def _settled(self, statement: PlannedStatement) -> bool:
        return Statement.objects.filter(
            customer__user__username=statement.company.username,
            period=self._period(statement.months_back),
        ).exists()

    def _issued(self, code: str, number: str) -> bool:
        return Invoice.objects.filter(code=code, number=number).exists()

    def _invoices_of(self, planned: PlannedInvoice, code: str) -> QuerySet[Invoice]:
        """The planned invoice: by code and number on paper; a digital one, numbered by the
        tax platform, by its company, medium and total (each unique in the story)."""
        if planned.medium == InvoiceMedium.DIGITAL:
            return Invoice.objects.filter(
                customer__user__username=planned.company.username,
                medium=InvoiceMedium.DIGITAL,
                total=Decimal(planned.total),
            )
        return Invoice.objects.filter(code=code, number=planned.number)

    def _issued_planned(self, planned: PlannedInvoice, code: str) -> bool:
        return self._invoices_of(planned, code).exists()

    def _returned_planned(self, planned: PlannedInvoice, code: str) -> bool:
        return ReturnRequest.objects.filter(invoice__in=self._invoices_of(planned, code)).exists()

    def _paper_logged(self, code: str, number: str) -> bool:
        return MailReceipt.objects.filter(invoice__code=code, invoice__number=number).exists()

    def _applied(self, company: Company, total: str) -> bool:
        return InvoiceApplication.objects.filter(
            customer__user__username=company.username, amount=Decimal(total)
        ).exists()

    # The steps.

    def _period(self, months_back: int) -> dt.date:
        return month_start(self.calendar.month, months_back)

    def _customer(self, company: Company) -> Customer:
        return Customer.objects.get(user__username=company.username)

    def _register(self, company: Company) -> None:
        user = self.users[company.username]
        Customer.objects.create(
            user=user,
            name=company.name,
            kind=CustomerKind.ENTERPRISE,
            taxpayer_id=company.taxpayer_id,
            mobile=company.mobile,
            language="zh-hans",
        )
        user.date_joined = timezone.now()
        user.save(update_fields=["date_joined"])

    def _settle(self, planned: PlannedStatement) -> None:
        statement = Statement.objects.create(
            customer=self._customer(planned.company),
            period=self._period(planned.months_back),
            amount=Decimal(planned.amount),
        )
        statement_settle(statement_id=statement.pk)

    def _apply(
        self,
        company: Company,
        invoice_type: str,
        total: str,
        medium: str = InvoiceMedium.PAPER,
    ) -> InvoiceApplication:
        fields: dict[str, Any] = company.application_fields(invoice_type, medium)
        return invoice_application_create(
            customer_id=self._customer(company).pk,
            invoice_type=invoice_type,
            amount=total,
            **fields,
        )

    def _invoice(self, planned: PlannedInvoice, code: str) -> None:
        application = self._apply(
            planned.company, planned.invoice_type, planned.total, planned.medium
        )
        issued_at = self._clock_to(planned.issued)
        if planned.medium == InvoiceMedium.DIGITAL:
            # What the issue task does on commit, done now: the sandbox numbers it, makes
            # its file and the invoice is emailed (printed, in development) after the step.
            tax_invoice_issue(application_id=application.pk)
            return
        invoice_issue(
            application_id=application.pk,
            code=code,
            number=planned.number,
            issued_at=issued_at,
            courier=SF,
            tracking_number=f"SF14022{planned.number}",
        )

    def _marketplace(self, company: Company, invoice_type: str, total: str, code: str) -> None:
        invoice_record_marketplace(
            customer_id=self._customer(company).pk,
            issuer_name=MARKETPLACE_ISSUER,
            invoice_type=invoice_type,
            title=company.name,
            amount=total,
            code=code,
            number=MARKETPLACE_NUMBER,
            issued_at=timezone.now(),
        )

    def _return(self, code: str, planned: PlannedInvoice, story: Return) -> None:
        customer = self._customer(planned.company)
        invoice = self._invoices_of(planned, code).get()
        form: dict[str, Any] = {}
        if story.buyer_form_serial:
            filed = timezone.localtime(timezone.now(), business_tz()).date()
            number = buyer_form_number(planned.company, filed, story.buyer_form_serial)
            form = {
                "red_letter_form": SimpleUploadedFile("信息表.png", form_scan(number), "image/png"),
                "red_letter_form_number": number,
            }
        rr = return_request_submit(
            invoice_id=invoice.pk,
            customer_id=customer.pk,
            actor=Actor.customer(customer.user, customer.pk),
            reason=story.reason,
            problem=story.problem,
            reason_code=story.reason_code,
            certified=story.certified,
            courier=story.courier,
            tracking_number=story.tracking_number,
            buyer_booked=story.buyer_booked,
            **form,
        )
        if planned.medium == InvoiceMedium.DIGITAL:
            self._drive(rr.pk)  # nothing is mailed: straight to the tax platform
            if story.buyer_decides is not None:
                when, confirmed = story.buyer_decides
                self._clock_to(when)
                return_request_simulate_buyer(
                    return_request_id=rr.pk, customer_id=customer.pk, confirmed=confirmed
                )
            if story.asked_again is not None:
                self._clock_to(story.asked_again)
                return_tax_poll(return_request_id=rr.pk)
        if story.cancelled is not None:
            self._clock_to(story.cancelled)
            return_request_cancel(
                return_request_id=rr.pk, actor=Actor.customer(customer.user, customer.pk)
            )
        if story.paper is not None:
            self._paper(code, planned.number, story.paper)
            self._drive(rr.pk)

    def _paper(self, code: str, number: str, paper: Paper) -> None:
        mail_receipt_log(
            invoice_code=code,
            invoice_number=number,
            actor=Actor.staff(self.finance),
            invoice_form_present=paper.invoice_form,
            deduction_form_present=paper.deduction_form,
            undamaged=paper.undamaged,
            received_at=self._clock_to(paper.received),
            courier=paper.courier,
            tracking_number=paper.tracking_number,
            notes=paper.notes,
        )

    def _drive(self, return_request_id: int) -> None:
        """What the return's tasks do, done here so the story does not depend on when (or
        whether) on-commit tasks run; those tasks then find nothing left to do."""
        if ReturnRequest.objects.get(pk=return_request_id).state == ReturnState.PROCESSING:
            return_request_process(return_request_id=return_request_id)
        if ReturnRequest.objects.get(pk=return_request_id).state == ReturnState.AWAITING_TAX:
            return_tax_submit(return_request_id=return_request_id)

    def _clock_to(self, when: When) -> dt.datetime:
        """Move the business clock on to a later moment of the same step."""
        return self.clock.set(self.calendar.at(when))

    # --- What to try -----------------------------------------------------------------------

    def _banner(self, password: str, *, from_env: bool) -> None:
        """The log-ins, each with what it will find: counted now, so still true after the
        demo users have worked through some of it."""
        origin = "from DEMO_PASSWORD" if from_env else "the default; set DEMO_PASSWORD to change"
        lines = ["", f"Log in at {SITE}/accounts/login/ with password {password} ({origin}).", ""]
        customer = Customer.objects.filter(user__username=HANGZHOU.username).first()
        if customer is not None:
            lines += self._customer_lines(customer)
        waiting_for_tax = returns_awaiting_tax_system()
        to_do = waiting_for_tax.filter(state=ReturnState.AWAITING_TAX).count()
        awaiting_buyer = waiting_for_tax.filter(state=ReturnState.AWAITING_BUYER).count()
        forms = RedLetterForm.objects.filter(review_state=FormReviewState.PENDING).count()
        waiting = returns_awaiting_paper().count()
        unmatched = MailReceipt.objects.filter(return_requests__isnull=True).count()
        failed = ReturnRequest.objects.filter(state=ReturnState.FAILED).count()
        to_issue = InvoiceApplication.objects.filter(state=ApplicationState.PENDING).count()
        lines += [
            f"  demo-finance     finance staff: {SITE}/admin/",
            f'{INDENT}"To do in the tax system": {_n(to_do, "task")} (act in the tax system, '
            "then record the red-letter invoice it issued); "
            f"{_n(awaiting_buyer, 'red-letter confirmation form')} awaiting its buyer",
            f"{INDENT}{_n(waiting, 'return')} waiting for paper, {_n(unmatched, 'envelope')} "
            f"logged before its online return, {_n(failed, 'failed return')} to retry, "
            f"{_n(to_issue, 'application')} to issue",
            f"  demo-reviewer    admin reviewer: {SITE}/admin/",
            f'{INDENT}"Red-letter forms to review": {_n(forms, "form")} (approving one sends its '
            "return on to the tax system)",
        ]
        second = Customer.objects.filter(user__username=SHANGHAI.username).first()
        if second is not None:
            lines.append(
                f"  {SHANGHAI.username}  {second.name}, a second company: finance already "
                "holds the paper of one of its invoices, so its Refund there completes at once"
            )
        self.stdout.write("\n".join(lines) + "\n")

    def _customer_lines(self, customer: Customer) -> list[str]:
        invoices = Invoice.objects.filter(customer=customer)
        returnable = (
            invoices.filter(issuer=Issuer.PROVIDER, state=InvoiceState.ISSUED)
            .exclude(return_requests__state__in=BLOCKING_STATES)
            .count()
        )
        marketplace = invoices.filter(issuer=Issuer.MARKETPLACE).count()
        lines = [
            f"  demo-customer    {customer.name}, the customer portal: {SITE}/billing/invoices/",
            f"{INDENT}{_n(invoices.count(), 'invoice')}: {returnable} to return (special and "
            f"ordinary, this month and earlier), {marketplace} from a Cloud Market provider; "
            "its returns (try the timeline of each):",
        ]
        returns = ReturnRequest.objects.filter(invoice__customer=customer).order_by("created_at")
        for rr in returns:
            state = rr.get_state_display()
            if rr.outcome:
                state = f"{state}: {rr.get_outcome_display()}"
            hint = STATE_HINTS.get(rr.state, "")
            lines.append(f"{INDENT}  {SITE}/billing/returns/{rr.pk}/  {state}{hint}")
        return lines


STATE_HINTS: dict[str, str] = {
    ReturnState.SUBMITTED: " (the paper is on its way)",
    ReturnState.RECEIVED: " (its red-letter form waits for review)",
    ReturnState.AWAITING_TAX: " (finance's task in the tax system)",
    ReturnState.AWAITING_BUYER: (
        ' (the buyer confirms the red-letter confirmation form: try "I have confirmed it")'
    ),
    ReturnState.REJECTED: " (the reason says why)",
    ReturnState.FAILED: " (refused by the tax system; finance may retry it)",
}


INDENT = " " * 19


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"

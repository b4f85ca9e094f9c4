"""Suite-wide fixtures. The suite needs PostgreSQL (and Redis for worker tests): it says so
plainly, rather than with a stack trace, when they are unreachable."""

import os

import pytest

from tests.services_check import require_postgres

pytest_plugins = ["tests.processes", "tests.twilio_mock.fixtures", "tests.browser_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    require_postgres()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the machine's shared Redis database (``redis_url``) run on one xdist worker,
    one after another: one of them flushes that database, which would pull the rug from under
    another worker's test on it. (Worker and fault tests that start their own redis-server on
    a port of their worker's own need no such care.)"""
    for item in items:
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("shared_redis"))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """The figures fault tests reported (``tests.processes.figures``), one block per test."""
    lines = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") != "call":
                continue
            for name, value in getattr(report, "user_properties", []):
                if name == "figures":
                    lines.append(f"{report.nodeid} ({outcome}):\n  {value}")
    if lines:
        terminalreporter.write_sep("=", "Fault-test figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts in the default language: a request through the test client leaves
    its language (LocaleMiddleware) active in the thread, and the next test in the same
    process would otherwise read Chinese messages where it expects English."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path, monkeypatch):
    """Uploaded files go to a per-test folder, never into the work tree.

    The scan field calls its storage callable once, when the model class is built, and keeps
    the instance: overriding STORAGES alone would not reach it, so the field's storage is
    swapped too.
    """
    from invoices.models import Invoice
    from returns.models import RedLetterForm
    from returns.storage import PrivateFileSystemStorage

    location = tmp_path / "private"
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {
            "BACKEND": "returns.storage.PrivateFileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    storage = PrivateFileSystemStorage(location=str(location))
    for field in (RedLetterForm._meta.get_field("file"), Invoice._meta.get_field("document")):
        monkeypatch.setattr(field, "storage", storage)


@pytest.fixture
def redis_url() -> str:
    """The machine's Redis database for tests (TEST_REDIS_URL); see the xdist group above."""
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def customer(db):
    from tests.factories import CustomerFactory

    return CustomerFactory()


@pytest.fixture
def finance_user(db):
    from tests.factories import UserFactory

    return UserFactory(username="finance", is_staff=True)


@pytest.fixture
def invoice(customer):
    """An ordinary provider invoice, issued now."""
    from tests.factories import issue_invoice

    return issue_invoice(customer)


@pytest.fixture
def special_invoice(customer):
    from invoices.models import InvoiceType
    from tests.factories import issue_invoice

    return issue_invoice(customer, invoice_type=InvoiceType.SPECIAL)


@pytest.fixture
def digital(customer):
    """A digital ordinary invoice (数电票), issued now."""
    from tests.factories import issue_digital_invoice

    return issue_digital_invoice(customer)


@pytest.fixture
def digital_special(customer):
    """A digital VAT special invoice (电子发票（增值税专用发票）), issued now."""
    from invoices.models import InvoiceType
    from tests.factories import issue_digital_invoice

    return issue_digital_invoice(customer, invoice_type=InvoiceType.SPECIAL)

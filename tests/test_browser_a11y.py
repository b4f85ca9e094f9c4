"""Issue 12, "Done when": every portal page, in every return state the demo data holds, at a
phone's width (375 px) and a laptop's (1280 px), in English and Chinese, checked by axe-core
(vendored: ``tests/vendor/axe-core``) for serious and critical violations and for sideways
scrolling; each page's screenshot at both widths goes to ``test-artifacts/a11y/``. Then the
keyboard: Refund, Cancel, Apply and upload done with keys only; and the error pages.

One browser for the session (``tests/browser_fixtures.py``); one seeded demo (``demo_data``, the
same story ``make run`` shows: a return in every state, paper and digital) per language; each
page is loaded once and checked at both widths by resizing the window.
"""

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from invoices.models import Invoice, InvoiceMedium, InvoiceProfile, InvoiceType
from invoices.rules import invoice_is_returnable
from returns.models import RedLetterForm, ReturnRequest, ReturnState
from returns.rules import return_allows_reapplying, return_slip_is_offered
from returns.selectors import return_blocking_for_invoice
from tests.browser_fixtures import ARTIFACTS, log_in, screenshot
from tests.factories import CustomerFactory, fund, issue_invoice
from tests.returns_helpers import MINIMAL_PDF, pdf_upload, submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text()
# WCAG 2.0/2.1/2.2 A and AA, and axe's best practices; the impacts that fail the test.
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}
BLOCKING = ("serious", "critical")
WIDTHS = (375, 1280)
ZOOMED = (320, 640, 1024)  # sideways scrolling only: small phones, 200 % zoom, tablets
LANGUAGES = {"en": "en-US,en;q=0.9", "zh-hans": "zh-CN,zh;q=0.9"}
DEMO_PASSWORD = "demo-pass-2026"
PASSWORD = "pw-for-tests-1"
SMALL = {"width": 375, "height": 800}


def axe_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands, one line each."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE)  # through the DevTools protocol: the portal's CSP does not apply
    result = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


def overflow(page) -> int:
    """How many pixels the page scrolls sideways (0 when it fits the window), or its content
    sticks out of <main> (a table wider than its card would not make the page scroll)."""
    return page.evaluate(
        """() => {
            const main = document.querySelector("main");
            return Math.max(
                document.documentElement.scrollWidth - window.innerWidth,
                main ? main.scrollWidth - main.clientWidth : 0,
            );
        }"""
    )


def check_at_both_widths(page, name: str, language: str, failures: list[str]) -> None:
    """axe and sideways scrolling at 375 px and 1280 px, without reloading: the window is
    resized and the layout follows (CSS media queries). A screenshot of each. And no sideways
    scrolling at 320 px (the narrowest phones), 640 px (a 1280 px laptop at 200 % zoom) nor
    1024 px (a tablet)."""
    for width in ZOOMED:
        page.set_viewport_size({"width": width, "height": 800})
        extra = overflow(page)
        if extra > 0:
            failures.append(f"{language} {width}px {name}: scrolls {extra} px sideways")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        extra = overflow(page)
        if extra > 0:
            failures.append(f"{language} {width}px {name}: scrolls {extra} px sideways")
        failures.extend(f"{language} {width}px {name}: {v}" for v in axe_violations(page))
        screenshot(page, f"a11y/{language}-{width}-{name}")


def returnables(customer_user: str, **kind) -> list[Invoice]:
    """The demo customer's invoices of this kind that the Refund button is offered for."""
    return [
        invoice
        for invoice in Invoice.objects.filter(customer__user__username=customer_user, **kind)
        if invoice_is_returnable(invoice) and not return_blocking_for_invoice(invoice_id=invoice.pk)
    ]


def returnable(customer_user: str, **kind) -> Invoice:
    found = returnables(customer_user, **kind)
    assert found, f"the demo has no returnable invoice {kind}"
    return found[0]


def leave_a_return_processing(invoice: Invoice) -> ReturnRequest:
    """*Processing* lasts a moment (the task runs on commit), except when the broker is down at
    commit: the return then waits for the sweeper (README, "Redis down at commit"). That is how
    this return is left in it, through the real service and ``enqueue_on_commit``."""
    from kombu.exceptions import OperationalError

    from returns.tasks import return_process_task

    def broker_down(*args, **kwargs):
        raise OperationalError("the broker is down (test)")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(return_process_task, "delay", broker_down)
        rr = submit(invoice, buyer_booked=False)
    rr.refresh_from_db()
    assert rr.state == ReturnState.PROCESSING
    return rr


@pytest.fixture
def demo(settings):
    """The demo company's story (``demo_data``, development-only: run with DEBUG on)."""
    with override_settings(DEBUG=True):
        call_command("demo_data", verbosity=0)
    return "demo-customer"


def language_page(browser, live_server, language: str):
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN" if language == "zh-hans" else "en-US",
        extra_http_headers={"Accept-Language": LANGUAGES[language]},
    )
    context.set_default_timeout(10_000)
    return context, context.new_page()


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_portal_page_in_every_state_passes_axe_and_fits_a_phone(
    browser, live_server, demo, language
):
    customer = demo
    leave_a_return_processing(returnables(customer, medium=InvoiceMedium.DIGITAL)[-1])
    returns = list(
        ReturnRequest.objects.filter(invoice__customer__user__username=customer).order_by("pk")
    )
    # Every state a customer can see, paper and digital.
    states = {rr.state for rr in returns}
    assert states == set(ReturnState.values), states
    paper_ordinary = returnable(
        customer, medium=InvoiceMedium.PAPER, invoice_type=InvoiceType.ORDINARY
    )
    paper_special = returnable(
        customer, medium=InvoiceMedium.PAPER, invoice_type=InvoiceType.SPECIAL
    )
    digital = returnable(customer, medium=InvoiceMedium.DIGITAL)
    awaiting_paper = next(rr for rr in returns if return_slip_is_offered(rr))
    completed = next(rr for rr in returns if return_allows_reapplying(rr))
    pages: list[tuple[str, str]] = [
        ("invoices", "/billing/invoices/"),
        ("invoices-returning", "/billing/invoices/?status=returning"),
        ("apply", "/billing/invoices/apply/"),
        ("notifications", "/billing/settings/notifications/"),
        ("refund-paper-ordinary", f"/billing/invoices/{paper_ordinary.pk}/refund/"),
        ("refund-paper-special", f"/billing/invoices/{paper_special.pk}/refund/"),
        ("refund-digital", f"/billing/invoices/{digital.pk}/refund/"),
        *(  # named by their place in the story, not their ids (which differ run to run)
            (f"return-{n:02d}-{rr.medium}-{rr.state}", f"/billing/returns/{rr.pk}/")
            for n, rr in enumerate(returns, start=1)
        ),
        ("return-several", "/billing/returns/several/"),
        ("return-slip", f"/billing/returns/{awaiting_paper.pk}/slip/"),
        ("apply-again", f"/billing/invoices/apply/?reapply={completed.invoice_id}"),
        ("404", "/billing/no-such-page/"),
    ]
    profile = InvoiceProfile.objects.filter(customer__user__username=customer).first()
    if profile is not None:
        pages.append(("apply-with-profile", f"/billing/invoices/apply/?profile={profile.pk}"))

    context, page = language_page(browser, live_server, language)
    failures: list[str] = []
    try:
        (ARTIFACTS / "a11y").mkdir(parents=True, exist_ok=True)
        for stale in (ARTIFACTS / "a11y").glob(f"{language}-*.png"):
            stale.unlink()
        page.set_viewport_size(SMALL)
        page.goto("/accounts/login/")
        check_at_both_widths(page, "login", language, failures)
        if language == "en":
            log_in(page, customer, DEMO_PASSWORD)
        else:
            _log_in_zh(page, customer, DEMO_PASSWORD)
        page.wait_for_url("**/billing/invoices/")
        for name, url in pages:
            response = page.goto(url)
            expected = 404 if name == "404" else 200
            assert response.status == expected, (name, response.status)
            check_at_both_widths(page, name, language, failures)

        # The Refund dialog, open (a special invoice: the certified question and both blocks).
        page.goto("/billing/invoices/")
        special = returnable(customer, medium=InvoiceMedium.PAPER, invoice_type=InvoiceType.SPECIAL)
        page.locator(f"tr[data-invoice='{special.pk}'] button[data-refund]").click()
        expect(page.get_by_role("dialog")).to_be_visible()
        check_at_both_widths(page, "refund-dialog", language, failures)
    finally:
        context.close()
    assert not failures, "\n".join(failures)


def _log_in_zh(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


# --- Keyboard only ---------------------------------------------------------------------------


def tab_to(page, target, *, limit: int = 60) -> None:
    """Press Tab until ``target`` has the focus: it is reachable from the keyboard, in the
    page's tab order (fails after ``limit`` presses)."""
    for _ in range(limit):
        if target.evaluate("element => element === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(target).to_be_focused()


def test_keyboard_refund_opens_the_dialog_with_space_and_submits_with_enter(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer)
    page.set_viewport_size(SMALL)
    log_in(page, "li.lei", PASSWORD)
    refund = page.locator(f"tr[data-invoice='{invoice.pk}']").get_by_role("button", name="Refund")
    tab_to(page, refund)
    expect(refund).to_have_css("outline-style", "solid")  # the focus is visible
    page.keyboard.press("Space")
    dialog = page.get_by_role("dialog")
    reason = dialog.get_by_role("textbox", name="Reason")
    expect(reason).to_be_focused()
    page.keyboard.type("The title misses our branch name")
    tab_to(page, dialog.get_by_role("button", name="OK"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/billing/returns/\d+/$"))
    expect(page.get_by_text("has been submitted")).to_be_visible()
    rr = ReturnRequest.objects.get(invoice=invoice)
    assert (rr.state, rr.reason) == (ReturnState.SUBMITTED, "The title misses our branch name")


def test_keyboard_the_dialogs_cancel_closes_it_and_gives_the_focus_back_to_refund(page):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer)
    log_in(page, "li.lei", PASSWORD)
    refund = page.locator(f"tr[data-invoice='{invoice.pk}']").get_by_role("button", name="Refund")
    tab_to(page, refund)
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    cancel = dialog.get_by_role("button", name="Cancel")
    expect(dialog.get_by_role("textbox", name="Reason")).to_be_focused()
    tab_to(page, cancel)
    page.keyboard.press("Space")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(refund).to_be_focused()
    page.keyboard.press("Enter")  # and Escape closes it too
    expect(page.get_by_role("dialog").get_by_role("textbox", name="Reason")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert not ReturnRequest.objects.exists()


def test_keyboard_cancel_a_return(page):
    customer = CustomerFactory(user__username="li.lei")
    rr = submit(issue_invoice(customer))
    log_in(page, "li.lei", PASSWORD)
    page.goto(f"/billing/returns/{rr.pk}/")
    page.on("dialog", lambda confirm: confirm.accept())  # "Cancel this return?"
    tab_to(page, page.get_by_role("button", name="Cancel return"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Your return has been cancelled.")).to_be_visible()
    expect(page.locator("[data-return-state]")).to_have_text("Cancelled")
    rr.refresh_from_db()
    assert rr.state == ReturnState.CANCELLED


def test_keyboard_apply_and_the_profile_list_never_reloads_on_an_arrow_key(page):
    customer = CustomerFactory(user__username="li.lei")
    fund(customer)
    InvoiceProfile.objects.create(
        customer=customer,
        name="Head office",
        medium=InvoiceMedium.DIGITAL,
        invoice_type=InvoiceType.ORDINARY,
        title="Hangzhou Head Office",
        taxpayer_id=customer.taxpayer_id,
    )
    log_in(page, "li.lei", PASSWORD)
    page.goto("/billing/invoices/apply/")
    page.evaluate("() => { window.stillHere = 1; }")  # gone if the page reloads
    profiles = page.get_by_role("combobox", name="Saved profile")
    tab_to(page, profiles)
    page.keyboard.press("ArrowDown")
    expect(profiles).to_have_value(re.compile(r"\d+"))
    page.wait_for_timeout(300)  # a reload would have started by now
    assert page.evaluate("() => window.stillHere") == 1
    expect(page).to_have_url(re.compile(r"/apply/$"))
    tab_to(page, page.get_by_role("button", name="Use profile"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"\?profile=\d+$"))
    title = page.get_by_role("textbox", name="Invoice title")
    expect(title).to_have_value("Hangzhou Head Office")
    amount = page.get_by_role("textbox", name="Amount (yuan)")
    tab_to(page, amount)
    page.keyboard.type("1234.56")
    tab_to(page, page.get_by_role("button", name="Submit application"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/billing/invoices/")
    expect(page.get_by_text("Your application for an invoice of ¥1,234.56")).to_be_visible()


def open_file_chooser_by_keyboard(page):
    """Open the focused file input's chooser with the keyboard: Space, as a person presses it.
    Headless Chromium opens a chooser only for a page that has the focus and now and then
    ignores the first key right after the focus arrives: the page is brought to the front, and
    Enter (the other key that opens a file input) is pressed when Space opened nothing."""
    page.bring_to_front()
    for key in ("Space", "Enter"):
        try:
            with page.expect_file_chooser(timeout=5_000) as chooser:
                page.keyboard.press(key)
        except PlaywrightTimeoutError:
            continue
        return chooser.value
    raise AssertionError("Neither Space nor Enter opened the file chooser of the focused input")


def test_keyboard_upload_the_buyers_red_letter_form(page, tmp_path):
    customer = CustomerFactory(user__username="li.lei")
    invoice = issue_invoice(customer, invoice_type=InvoiceType.SPECIAL)
    rr = submit(
        invoice,
        certified=True,
        red_letter_form=pdf_upload(),
        red_letter_form_number="1234567890123456",
    )
    scan = tmp_path / "form.pdf"
    scan.write_bytes(MINIMAL_PDF)
    log_in(page, "li.lei", PASSWORD)
    page.goto(f"/billing/returns/{rr.pk}/")
    file_input = page.get_by_label(re.compile(r"^Red-letter information form \(PDF"))
    tab_to(page, file_input)
    chooser = open_file_chooser_by_keyboard(page)
    chooser.set_files(str(scan))
    tab_to(page, page.get_by_role("textbox", name=re.compile("form number", re.IGNORECASE)))
    page.keyboard.type("6543210987654321")
    tab_to(page, page.get_by_role("button", name="Replace form"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("The red-letter information form has been uploaded.")).to_be_visible()
    assert RedLetterForm.objects.filter(return_request=rr, form_number="6543210987654321").exists()


# --- Error pages ---------------------------------------------------------------------------------

ERRORS = {
    "en": ("Page not found", "Back to the Billing Center", "This form has expired", "Log in"),
    "zh-hans": ("页面不存在", "返回费用中心", "表单已过期", "登录"),
}


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_error_pages_speak_the_visitors_language_in_the_portal_layout_with_a_way_back(
    browser, live_server, language
):
    CustomerFactory(user__username="li.lei")
    not_found, back, expired, log_in_button = ERRORS[language]
    context, page = language_page(browser, live_server, language)
    try:
        page.set_viewport_size(SMALL)
        response = page.goto("/billing/no-such-page/")
        assert response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text(not_found)
        expect(page.locator("html")).to_have_attribute("lang", language)
        assert overflow(page) <= 0
        assert axe_violations(page) == []
        page.get_by_role("link", name=back).click()
        page.wait_for_url("**/accounts/login/**")

        # A form sent from a page whose CSRF cookie is gone (an expired page).
        context.clear_cookies()
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.locator("#id_username").fill("li.lei")
            page.locator("#id_password").fill(PASSWORD)
            page.get_by_role("button", name=log_in_button).click()
        assert posted.value.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text(expired)
        expect(page.get_by_role("link", name=back)).to_be_visible()
        assert overflow(page) <= 0
        assert axe_violations(page) == []
        screenshot(page, f"a11y/{language}-375-csrf-failure")
    finally:
        context.close()


def test_keyboard_every_focus_stop_shows_a_focus_ring(page):
    """Tab through the Invoice Management page and the Apply page: each element that takes
    the focus draws an outline at least 2 px wide (or the page's skip link, shown on focus)."""
    customer = CustomerFactory(user__username="li.lei")
    fund(customer)
    issue_invoice(customer)
    log_in(page, "li.lei", PASSWORD)
    for url in ("/billing/invoices/", "/billing/invoices/apply/"):
        page.goto(url)
        seen = 0
        for _ in range(40):
            page.keyboard.press("Tab")
            ring = page.evaluate(
                """() => {
                    const el = document.activeElement;
                    if (!el || el === document.body) return null;
                    const style = getComputedStyle(el);
                    return {
                        tag: el.tagName + (el.name ? "[" + el.name + "]" : ""),
                        style: style.outlineStyle,
                        width: parseFloat(style.outlineWidth),
                        top: el.getBoundingClientRect().top,
                    };
                }"""
            )
            if ring is None:
                break  # past the last focus stop
            seen += 1
            assert ring["style"] != "none", (url, ring)
            assert ring["width"] >= 2, (url, ring)
            assert ring["top"] >= 0, (url, ring)  # on screen (the skip link comes into view)
        assert seen >= 8, (url, seen)

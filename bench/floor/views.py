"""The floor's views: what the app's pages do, in raw SQL and without the app's stack.

``refund`` (P1): lock the customer's invoice, insert the return, its event and its audit row
(the rows the app writes for a paper return), answer with the redirect the app answers.
``invoices`` (P2): the
reads of Invoice Management (the page's 20 invoices in its order with the return that holds
each, their count, the invoiceable amount) written out as an HTML table by string formatting.
"""

import secrets
from html import escape

from django.db import connection, transaction
from django.http import HttpResponse, HttpResponseNotFound, HttpResponseRedirect
from django.utils import timezone

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _reference(now) -> str:
    """A return reference as the app draws one (``returns.references``; the floor imports no
    app): R, the Beijing date, six random characters and a Luhn mod 32 check character."""
    from zoneinfo import ZoneInfo

    from stdnum import luhn

    body = f"{now.astimezone(ZoneInfo('Asia/Shanghai')):%y%m%d}" + "".join(
        secrets.choice(_ALPHABET) for _ in range(6)
    )
    return f"R{body[:6]}-{body[6:]}{luhn.calc_check_digit(body, alphabet=_ALPHABET)}"


def refund(request, customer_id: int, invoice_id: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    reason = request.POST.get("reason", "").strip()[:500]
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.medium, i.code, i.number, c.user_id FROM invoices_invoice AS i "
            "JOIN invoices_customer AS c ON c.id = i.customer_id "
            "WHERE i.id = %s AND i.customer_id = %s AND i.state = 'issued' FOR UPDATE OF i",
            [invoice_id, customer_id],
        )
        row = cursor.fetchone()
        if row is None:
            return HttpResponseNotFound()
        medium, code, number, user_id = row
        cursor.execute(
            "INSERT INTO returns_returnrequest (state, problem, reason, certified, courier, "
            "tracking_number, outcome, rejection_reason, error, created_at, updated_at, "
            "invoice_id, submitted_by_id, reason_code, buyer_booked, buyer_form_number, medium, "
            "rejection_note, reference, invoice_code, invoice_number) "
            "VALUES ('submitted', 'other', %s, false, '', '', '', '', '', %s, %s, %s, %s, "
            "'issuing_error', false, '', %s, '', %s, %s, %s) RETURNING id",
            [reason, now, now, invoice_id, user_id, medium, _reference(now), code, number],
        )
        (return_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO returns_returnevent (from_state, to_state, note, note_key, note_params, "
            "actor_kind, created_at, actor_id, return_request_id) "
            "VALUES ('', 'submitted', %s, '', '{}', 'customer', %s, %s, %s)",
            [reason, now, user_id, return_id],
        )
        cursor.execute(
            "INSERT INTO audit_auditentry (at, actor_kind, actor_user_id, actor_customer_id, "
            "actor_task, action, object_type, object_id, customer_id, params, reason) "
            "VALUES (%s, 'customer', %s, %s, '', 'return.submitted', 'returns.returnrequest', "
            "%s, %s, '{}', %s)",
            [now, user_id, customer_id, str(return_id), customer_id, reason],
        )
    return HttpResponseRedirect(f"/billing/returns/{return_id}/")


INVOICE_PAGE = """
SELECT i.id, i.title, i.medium, i.invoice_type, i.total, i.amount, i.tax, i.code, i.number,
       i.state, i.issued_at,
       (SELECT r.id FROM returns_returnrequest AS r WHERE r.invoice_id = i.id
          AND r.state IN ('submitted', 'received', 'processing', 'awaiting_tax',
                          'awaiting_buyer', 'completed', 'failed') ORDER BY r.id DESC LIMIT 1)
FROM invoices_invoice AS i WHERE i.customer_id = %s
ORDER BY i.issued_at DESC, i.id DESC LIMIT 20
"""


def invoices(request, customer_id: int) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM invoices_invoice WHERE customer_id = %s", [customer_id]
        )
        (count,) = cursor.fetchone()
        cursor.execute(
            "SELECT coalesce(sum(amount), 0) FROM invoices_ledgerentry WHERE customer_id = %s",
            [customer_id],
        )
        (balance,) = cursor.fetchone()
        cursor.execute(INVOICE_PAGE, [customer_id])
        rows = cursor.fetchall()
    body = "".join(
        f'<tr data-invoice="{pk}"><td>{issued:%Y-%m-%d %H:%M}</td><td>{escape(title)}</td>'
        f"<td>{medium} {kind}</td><td>&yen;{total:,.2f} ({amount:,.2f} + {tax:,.2f})</td>"
        f"<td>{code} {number}</td><td>{state}</td>"
        f'<td><a href="/billing/invoices/{pk}/refund/">{return_id or "Refund"}</a></td></tr>'
        for (
            pk,
            title,
            medium,
            kind,
            total,
            amount,
            tax,
            code,
            number,
            state,
            issued,
            return_id,
        ) in rows
    )
    return HttpResponse(
        f"<!doctype html><html><body><p>&yen;{balance:,.2f}</p><p>{count} invoices</p>"
        f"<table>{body}</table></body></html>"
    )

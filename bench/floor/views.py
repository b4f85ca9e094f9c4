"""The refund's transaction in raw SQL: lock the customer's invoice, insert the return and its
event (the rows the app writes for a paper return), answer with the redirect the app answers."""

from django.db import connection, transaction
from django.http import HttpResponse, HttpResponseNotFound, HttpResponseRedirect
from django.utils import timezone


def refund(request, customer_id: int, invoice_id: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    reason = request.POST.get("reason", "").strip()[:500]
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.medium, c.user_id FROM invoices_invoice AS i "
            "JOIN invoices_customer AS c ON c.id = i.customer_id "
            "WHERE i.id = %s AND i.customer_id = %s AND i.state = 'issued' FOR UPDATE OF i",
            [invoice_id, customer_id],
        )
        row = cursor.fetchone()
        if row is None:
            return HttpResponseNotFound()
        medium, user_id = row
        cursor.execute(
            "INSERT INTO returns_returnrequest (state, problem, reason, certified, courier, "
            "tracking_number, outcome, rejection_reason, error, created_at, updated_at, "
            "invoice_id, submitted_by_id, reason_code, buyer_booked, buyer_form_number, medium, "
            "rejection_note) "
            "VALUES ('submitted', 'other', %s, false, '', '', '', '', '', %s, %s, %s, %s, "
            "'issuing_error', false, '', %s, '') RETURNING id",
            [reason, now, now, invoice_id, user_id, medium],
        )
        (return_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO returns_returnevent (from_state, to_state, note, created_at, actor_id, "
            "return_request_id) VALUES ('', 'submitted', %s, %s, %s, %s)",
            [reason, now, user_id, return_id],
        )
    return HttpResponseRedirect(f"/billing/returns/{return_id}/")

"""Customer portal pages. Views parse input, call a service or selector, and render."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render

from invoices.selectors import customer_for_user, invoiceable_amount, invoices_for_customer


def home(request):
    return redirect("billing:invoices")


@login_required
def invoice_management(request):
    customer = customer_for_user(user=request.user)
    if customer is None:
        raise Http404("No customer account")
    context = {
        "customer": customer,
        "invoiceable_amount": invoiceable_amount(customer_id=customer.pk),
        "invoices": invoices_for_customer(customer=customer)[:50],
    }
    return render(request, "billing/invoice_management.html", context)

from django.urls import path

from bench.floor.views import invoices, refund

urlpatterns = [
    path("refund/<int:customer_id>/<int:invoice_id>/", refund),
    path("invoices/<int:customer_id>/", invoices),
]

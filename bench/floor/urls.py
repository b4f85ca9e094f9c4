from django.urls import path

from bench.floor.views import refund

urlpatterns = [path("refund/<int:customer_id>/<int:invoice_id>/", refund)]

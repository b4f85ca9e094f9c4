from django.urls import path

from returns import views

app_name = "billing"

urlpatterns = [
    path("", views.home, name="home"),
    path("billing/invoices/", views.invoice_management, name="invoices"),
]

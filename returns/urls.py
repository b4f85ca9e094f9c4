from django.urls import path

from returns import views

app_name = "billing"

urlpatterns = [
    path("", views.home, name="home"),
    path("billing/invoices/", views.invoice_management, name="invoices"),
    path("billing/invoices/apply/", views.invoice_apply, name="apply"),
    path(
        "billing/applications/<int:pk>/cancel/",
        views.application_cancel,
        name="application_cancel",
    ),
    path("billing/invoices/<int:invoice_id>/refund/", views.invoice_refund, name="refund"),
    path(
        "billing/invoices/<int:invoice_id>/download/",
        views.invoice_document_download,
        name="invoice_download",
    ),
    path(
        "billing/settings/notifications/",
        views.notification_settings,
        name="notification_settings",
    ),
    path("billing/returns/several/", views.returns_several, name="returns_several"),
    path("billing/envelopes/<int:pk>/", views.envelope_detail, name="envelope_detail"),
    path("billing/envelopes/<int:pk>/slip/", views.envelope_slip, name="envelope_slip"),
    path("billing/returns/<int:pk>/", views.return_detail, name="return_detail"),
    path("billing/returns/<int:pk>/slip/", views.return_slip, name="return_slip"),
    path("billing/returns/<int:pk>/cancel/", views.return_cancel, name="return_cancel"),
    path("billing/returns/<int:pk>/tracking/", views.return_tracking, name="return_tracking"),
    path("billing/returns/<int:pk>/form/", views.return_form_upload, name="return_form_upload"),
    path(
        "billing/returns/<int:pk>/sandbox-buyer/",
        views.return_simulate_buyer,
        name="return_simulate_buyer",
    ),
    path(
        "billing/returns/<int:pk>/forms/<int:form_id>/",
        views.return_form_download,
        name="return_form_download",
    ),
]

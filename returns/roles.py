"""The two back-office roles (DESIGN.md) and exactly the permissions each has.

Finance staff: issue invoices, log mail receipts, reject and retry returns, record the tax
system's outcomes (the queue "To do in the tax system"), resend failed SMS, view the SMS and
emails sent to customers and everything returns-related. Admin reviewers: review red-letter
forms, view returns and the tax-system queue.
Superusers have every permission. No role has a delete permission: nobody deletes a return, a
receipt, an invoice or a ledger entry (the admin refuses deletes for superusers too).
"""

FINANCE_STAFF = "Finance staff"
ADMIN_REVIEWERS = "Admin reviewers"

_VIEW_RETURNS = [
    ("returns", "view_returnrequest"),
    ("returns", "view_returnevent"),
    ("returns", "view_mailreceipt"),
    ("returns", "view_redletterform"),
    ("invoices", "view_invoice"),
    ("invoices", "view_customer"),
    ("invoices", "view_taxrequest"),
    ("audit", "view_auditentry"),
]
ROLES: dict[str, list[tuple[str, str]]] = {
    FINANCE_STAFF: [
        *_VIEW_RETURNS,
        ("invoices", "view_invoiceapplication"),
        ("invoices", "view_statement"),
        ("invoices", "view_redletterinvoice"),
        ("invoices", "view_ledgerentry"),
        ("invoices", "add_invoice"),
        ("invoices", "record_taxrequest"),
        ("invoices", "view_taxoutcomecorrection"),
        ("returns", "log_mailreceipt"),
        ("returns", "reject_returnrequest"),
        ("returns", "retry_returnrequest"),
        ("notifications", "view_smsmessage"),
        ("notifications", "resend_smsmessage"),
        ("notifications", "view_emailnotification"),
        # Unlock a locked-out log-in (config/admin.py: the "Unlock" action; no delete).
        ("axes", "view_accessattempt"),
        ("axes", "change_accessattempt"),
    ],
    ADMIN_REVIEWERS: [
        *_VIEW_RETURNS,
        ("invoices", "view_redletterinvoice"),
        ("invoices", "view_taxoutcomecorrection"),
        ("invoices", "correct_taxrequest"),
        ("returns", "review_redletterform"),
    ],
}


def role_groups_sync(
    *, group_model, permission_model, roles: dict[str, list[tuple[str, str]]] = ROLES
) -> None:
    """Create the role groups (or reset their permissions to exactly ``roles``); the models may
    be historical ones (the data migrations) or the real ones (demo data, tests). The
    permissions must exist."""
    for name, codenames in roles.items():
        group, _created = group_model.objects.get_or_create(name=name)
        group.permissions.set(
            [
                permission_model.objects.get(content_type__app_label=app, codename=codename)
                for app, codename in codenames
            ]
        )

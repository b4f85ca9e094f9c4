"""Words of installed packages that ship no Simplified Chinese catalog, marked here so that
``make messages`` keeps their translations in ours (LOCALE_PATHS comes first): the back office
shows them to Chinese finance staff. Nothing imports this module.

django-axes (log-in protection): its admin's models, fields and labels.
"""

from django.utils.translation import gettext_noop as _

AXES = (
    _("Access Attempt"),
    _("Access lock out"),
    _("Attempt Remaining"),
    _("Attempt Time"),
    _("Clean up expired attempts"),
    _("Expires At"),
    _("Failed Logins"),
    _("Form Data"),
    _("GET Data"),
    _("HTTP Accept"),
    _("IP Address"),
    _("Locked Out"),
    _("Logout Time"),
    _("Meta Data"),
    _("Not set"),
    _("POST Data"),
    _("Path"),
    _("Session key hash (sha256)"),
    _("The time when access attempt expires and is no longer valid."),
    _("User Agent"),
    _("access attempt expiration"),
    _("access attempt expirations"),
    _("access attempt"),
    _("access attempts"),
    _("access failure"),
    _("access failures"),
    _("access log"),
    _("access logs"),
)

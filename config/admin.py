"""The log-in lock-outs in the back office: finance staff unlock a customer without a superuser.

django-axes' own list is kept (filters, search); an "Unlock" action is added for whoever may
change access attempts (finance staff, see returns.roles). Deleting rows stays a superuser's."""

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from config.services import log_in_unlock

admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(AxesAccessAttemptAdmin):
    actions = ["unlock"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # attempts are facts: unlock clears them, nobody edits them

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("axes.change_accessattempt")

    @admin.action(description=_("Unlock: let them log in again"), permissions=["unlock"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        rows = list(queryset.values_list("username", "ip_address"))
        log_in_unlock(
            usernames=[username for username, _address in rows],
            addresses=[address for _username, address in rows],
        )
        self.message_user(
            request,
            ngettext("%(count)d log-in unlocked.", "%(count)d log-ins unlocked.", len(rows))
            % {"count": len(rows)},
            messages.SUCCESS,
        )

"""The audit log in the back office: read-only, filterable (actor type, action, date), and
scoped to one customer (``?customer_id=7``) or one return (``?scope=return:42``)."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin
from core.audit.models import AuditEntry
from core.audit.scopes import audit_scope_condition


class ScopeFilter(admin.SimpleListFilter):
    """Everything about one return (its invoice, paper, tax request and SMS too)."""

    title = _("scope")
    parameter_name = "scope"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, value)] if value else []

    def queryset(self, request: Any, queryset: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
        value = self.value()
        if not value:
            return queryset
        condition = audit_scope_condition(value)
        return queryset.filter(condition) if condition is not None else queryset.none()


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_kind", "who", "what", "object_type", "object_id", "reason"]
    list_filter = ["actor_kind", "action", ScopeFilter]
    search_fields = ["=object_id", "actor_user__username", "actor_task", "reason", "action"]
    list_select_related = ["actor_user"]
    date_hierarchy = "at"
    readonly_fields = [
        "at",
        "actor_kind",
        "actor_user",
        "actor_customer_id",
        "actor_task",
        "action",
        "what",
        "object_type",
        "object_id",
        "customer_id",
        "params",
        "reason",
    ]

    @admin.display(description=_("who"), ordering="actor_user__username")
    def who(self, entry: AuditEntry) -> str:
        return entry.actor_display

    @admin.display(description=_("what"))
    def what(self, entry: AuditEntry) -> str:
        return entry.text

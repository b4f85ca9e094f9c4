"""The audit log: one row per action, append-only (a PostgreSQL trigger refuses UPDATE and
DELETE; the admin is read-only)."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.audit.actor import ActorKind
from core.audit.messages import message_render


class AuditEntry(models.Model):
    """Who (a typed actor), when, what (an action on an object, with its parameters) and why
    (free text, kept as typed). Never updated, never deleted."""

    at = models.DateTimeField(_("at"), default=timezone.now)  # audit_order_idx
    actor_kind = models.CharField(_("actor type"), max_length=8, choices=ActorKind.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    # The acting customer (no foreign key: core depends on no app; the id is enough to find it).
    actor_customer_id = models.BigIntegerField(_("acting customer"), null=True, blank=True)
    actor_task = models.CharField(_("task"), max_length=200, blank=True)
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=64)
    object_id = models.CharField(_("object"), max_length=64)
    # The customer the action concerns (their return, invoice, SMS…), for the customer's page.
    customer_id = models.BigIntegerField(_("customer"), null=True, blank=True)
    params = models.JSONField(_("parameters"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    reason = models.TextField(_("why"), blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "id"], name="audit_object_idx"),
            models.Index(fields=["customer_id", "id"], name="audit_customer_idx"),
            models.Index(fields=["action", "at"], name="audit_action_idx"),
            models.Index(fields=["at", "id"], name="audit_order_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(actor_kind__in=ActorKind.values), name="audit_actor_kind_valid"
            ),
            # A person is a user; the system is a task's name and no user.
            models.CheckConstraint(
                condition=(
                    Q(actor_kind=ActorKind.SYSTEM, actor_user__isnull=True)
                    & ~Q(actor_task="")
                    & Q(actor_customer_id__isnull=True)
                )
                | Q(actor_kind=ActorKind.STAFF, actor_user__isnull=False, actor_task="")
                | Q(
                    actor_kind=ActorKind.CUSTOMER,
                    actor_user__isnull=False,
                    actor_customer_id__isnull=False,
                    actor_task="",
                ),
                name="audit_actor_is_typed",
            ),
            models.CheckConstraint(condition=~Q(action=""), name="audit_action_named"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_type}#{self.object_id}"

    @property
    def text(self) -> str:
        """What happened, in the reader's (active) language."""
        return message_render(self.action, self.params)

    @property
    def actor_display(self) -> str:
        """For staff: the user's name, or the task's."""
        if self.actor_kind == ActorKind.SYSTEM:
            return self.actor_task
        return self.actor_user.get_username() if self.actor_user else "-"

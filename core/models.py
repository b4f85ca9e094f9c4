"""The task outbox: a task to publish, written in the same transaction as the change it follows;
and the back office's actions done in the background (``BulkAction``, ``core.bulk``).

``core.outbox`` writes a row when a service enqueues a task (``enqueue_on_commit``), publishes
it right after the commit and marks it published; the worker deletes it when the task has
finished. A row left unpublished (the broker was down) or whose task was lost (a worker died
holding it) is published again by the relay (``manage.py outbox_relay``). See README,
"Recovery: the task outbox".
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class OutboxMessage(models.Model):
    task = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    correlation_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the task may run: now, or later for a countdown (the tax system's poll).
    run_at = models.DateTimeField()
    # Set when the broker took the message; null while it still has to be published.
    published_at = models.DateTimeField(null=True, blank=True)
    publish_count = models.PositiveIntegerField(default=0)
    # Published again after this unless the task has finished (the row is then gone): while a
    # worker holds the message its main process keeps pushing this forward (core.outbox).
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The relay's two questions: what was never published, and whose lease ran out.
            models.Index(
                fields=["run_at"],
                name="outbox_unpublished_idx",
                condition=models.Q(published_at__isnull=True),
            ),
            models.Index(
                fields=["lease_until"],
                name="outbox_lease_idx",
                condition=models.Q(published_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task}{tuple(self.args)!r}"


class BulkAction(models.Model):
    """A back-office action on more rows than one web request should take on (rejecting a few
    thousand returns, resending SMS after an outage): the rows' ids, fixed when staff asked,
    worked through in the background by ``core.bulk``, each row in its own transaction with
    the action's progress, so that what it did is counted exactly once whatever happens to
    the worker. Staff follow it under "Bulk actions"."""

    # The registered kind (``core.bulk``), e.g. "returns.reject".
    kind = models.CharField(_("action"), max_length=64)
    params = models.JSONField(default=dict)  # what staff entered with it (a reason...)
    object_ids = models.JSONField(default=list)
    total = models.PositiveIntegerField(_("rows"))  # len(object_ids), for the list
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    # The requester's language: the errors recorded on each row are written in it.
    language = models.CharField(max_length=16)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    # How many of ``object_ids`` are done; the next one to do is ``object_ids[position]``.
    position = models.PositiveIntegerField(_("done"), default=0)
    # Rows done, by outcome ("rejected", "error"...).
    outcomes = models.JSONField(default=dict)
    # The first ``BULK_ACTION_ERRORS_KEPT`` refusals: [{"id": 42, "error": "..."}].
    errors = models.JSONField(default=list)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("bulk action")
        verbose_name_plural = _("bulk actions")

    def __str__(self) -> str:
        return f"{str(self._meta.verbose_name).capitalize()} #{self.pk}"

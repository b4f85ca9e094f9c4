"""The task outbox: a task to publish, written in the same transaction as the change it follows.

``core.outbox`` writes a row when a service enqueues a task (``enqueue_on_commit``), publishes
it right after the commit and marks it published; the worker deletes it when the task has
finished. A row left unpublished (the broker was down) or whose task was lost (a worker died
holding it) is published again by the relay (``manage.py outbox_relay``). See README,
"Recovery: the task outbox".
"""

from django.db import models


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

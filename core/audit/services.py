"""Recording an action. Call it inside the service's own transaction: the audit row commits
with the action or not at all."""

from collections.abc import Mapping
from typing import Any

from django.db import models

from core.audit.actor import Actor, ActorKind
from core.audit.models import AuditEntry

REASON_MAX = 2000


def object_label(obj: models.Model) -> str:
    """How an object is named in the log: ``app_label.modelname``."""
    return obj._meta.label_lower


def audit_record(
    *,
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: Any = None,
    customer_id: int | None = None,
    params: Mapping[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    """Append one action to the audit log: ``obj`` (or ``object_type`` + ``object_id``) is what
    it was done to, ``customer_id`` whom it concerns, ``params`` what a message key needs to
    word it, ``reason`` why (as typed)."""
    if obj is not None:
        object_type, object_id = object_label(obj), obj.pk
    if not object_type or object_id is None:
        raise ValueError("An audit entry names the object acted on.")
    return AuditEntry.objects.create(
        actor_kind=actor.kind,
        actor_user=actor.user,
        actor_customer_id=actor.customer_id if actor.kind == ActorKind.CUSTOMER else None,
        actor_task=actor.task if actor.kind == ActorKind.SYSTEM else "",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        customer_id=customer_id,
        params=dict(params or {}),
        reason=(reason or "").strip()[:REASON_MAX],
    )

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


def audit_entry_new(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: Any,
    customer_id: int | None = None,
    params: Mapping[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    """The audit row of one action, not yet saved: ``audit_record`` saves it; a statement that
    inserts the object too writes the object's new id in its place (``object_id`` None here;
    the Refund's submit, issue 16)."""
    return AuditEntry(
        actor_kind=actor.kind,
        actor_user=actor.user,
        actor_customer_id=actor.customer_id if actor.kind == ActorKind.CUSTOMER else None,
        actor_task=actor.task if actor.kind == ActorKind.SYSTEM else "",
        action=action,
        object_type=object_type,
        object_id="" if object_id is None else str(object_id),
        customer_id=customer_id,
        params=dict(params or {}),
        reason=(reason or "").strip()[:REASON_MAX],
    )


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
    entry = audit_entry_new(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        customer_id=customer_id,
        params=params,
        reason=reason,
    )
    entry.save(force_insert=True)
    return entry

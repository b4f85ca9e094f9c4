"""Writes that belong to the site rather than to an app: unlocking log-ins (django-axes)."""

from collections.abc import Iterable

from axes.utils import reset
from django.db import transaction


@transaction.atomic
def log_in_unlock(*, usernames: Iterable[str], addresses: Iterable[str]) -> int:
    """Let locked-out usernames and addresses log in again: their failed attempts are cleared
    (django-axes counts them; clearing is how it unlocks). Returns how many were cleared."""
    cleared = 0
    for username in {u for u in usernames if u}:
        cleared += reset(username=username)
    for address in {a for a in addresses if a}:
        cleared += reset(ip=address)
    return cleared

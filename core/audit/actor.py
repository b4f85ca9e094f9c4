"""Who acts: a customer (their user and customer), a staff user, or a system task by name."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import models
from django.utils.translation import gettext_lazy as _


class ActorKind(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    STAFF = "staff", _("Staff")
    SYSTEM = "system", _("System")


@dataclass(frozen=True)
class Actor:
    """Passed into every service that records an action. Build it with one of the three
    constructors: ``Actor.customer(user, customer_id)``, ``Actor.staff(user)``,
    ``Actor.system("returns.tasks.return_process_task")`` (a Celery task passes its own name)."""

    kind: ActorKind
    user: User | None = None
    customer_id: int | None = None
    task: str = ""

    def __post_init__(self) -> None:
        if self.kind == ActorKind.SYSTEM:
            if self.user is not None or not self.task:
                raise ValueError("A system actor is a task name, without a user.")
        elif self.user is None:
            raise ValueError("A customer or staff actor is a user.")
        if self.kind == ActorKind.CUSTOMER and self.customer_id is None:
            raise ValueError("A customer actor names its customer.")

    @classmethod
    def customer(cls, user: User | AnonymousUser, customer_id: int) -> "Actor":
        return cls(ActorKind.CUSTOMER, user=_logged_in(user), customer_id=customer_id)

    @classmethod
    def staff(cls, user: User | AnonymousUser) -> "Actor":
        return cls(ActorKind.STAFF, user=_logged_in(user))

    @classmethod
    def system(cls, task: str) -> "Actor":
        return cls(ActorKind.SYSTEM, task=task)

    @classmethod
    def for_user(cls, user: Any) -> "Actor":
        """A staff member when ``is_staff``, else the customer the user logs in as (for
        scripts and tests; views and admin say which they are)."""
        if user.is_staff:
            return cls.staff(user)
        return cls.customer(user, user.customer.pk)

    @property
    def is_system(self) -> bool:
        return self.kind == ActorKind.SYSTEM

    @property
    def person(self) -> User:
        """The user of a customer or staff actor (for the columns that name a person)."""
        if self.user is None:
            raise ValueError(f"{self} is not a person.")
        return self.user

    def __str__(self) -> str:
        if self.kind == ActorKind.SYSTEM:
            return f"system:{self.task}"
        assert self.user is not None  # noqa: S101 (__post_init__)
        return f"{self.kind}:{self.user.get_username()}"


def _logged_in(user: User | AnonymousUser) -> User:
    if not isinstance(user, User):
        raise ValueError("An actor is a logged-in user.")
    return user

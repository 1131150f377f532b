"""The node's General Settings, its connections and what happens to them."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone


class Mode(models.TextChoices):
    BASIC = "basic", "Basic"
    SCRIPT = "script", "Script"


class License(models.TextChoices):
    EVALUATION = "evaluation", "Evaluation"
    PAID = "paid", "Paid"
    FREE = "free", "Free"


class GeneralSettings(models.Model):
    """This node's identity and licence: one row per node, seeded from the environment."""

    SINGLETON_PK = 1

    uid = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    node_url = models.URLField(
        "Exalate URL",
        max_length=500,
        help_text="The public base address other nodes use to reach this node.",
    )
    short_name = models.CharField(
        "default local short name",
        max_length=40,
        help_text="Offered as this instance's short name when a connection is set up.",
    )
    platform = models.CharField(max_length=20, default="xurrent", editable=False)
    public = models.BooleanField(
        "instance is public",
        default=True,
        help_text="Only a public instance can initiate a connection: "
        "the other side must be able to reach it to accept.",
    )
    license = models.CharField(max_length=20, choices=License.choices)
    evaluation_ends_on = models.DateField(
        null=True, blank=True, help_text="After this day an evaluation counts as Free."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "general settings"
        verbose_name_plural = "general settings"

    def __str__(self) -> str:
        return f"General Settings of {self.short_name}"

    def save(self, *args, **kwargs) -> None:
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("The General Settings of a node cannot be deleted.")

    @classmethod
    def load(cls) -> GeneralSettings:
        """The node's settings, created from the environment the first time they're read."""
        obj = cls.objects.filter(pk=cls.SINGLETON_PK).first()
        if obj is not None:
            return obj
        license = settings.EXALATE_LICENSE
        ends = (
            date.today() + timedelta(days=settings.EXALATE_EVALUATION_DAYS)
            if license == License.EVALUATION
            else None
        )
        obj, _ = cls.objects.get_or_create(
            pk=cls.SINGLETON_PK,
            defaults={
                "node_url": settings.EXALATE_NODE_URL,
                "short_name": default_short_name(settings.EXALATE_NODE_URL),
                "public": settings.EXALATE_PUBLIC,
                "license": license,
                "evaluation_ends_on": ends,
            },
        )
        return obj

    @property
    def effective_license(self) -> str:
        if (
            self.license == License.EVALUATION
            and self.evaluation_ends_on is not None
            and self.evaluation_ends_on < timezone.localdate()
        ):
            return License.FREE
        return self.license

    def available_modes(self) -> list[str]:
        """The configuration modes this node may take part in right now."""
        if self.effective_license == License.FREE:
            return [Mode.BASIC.value]
        return [Mode.BASIC.value, Mode.SCRIPT.value]

    @property
    def base_url(self) -> str:
        return self.node_url.rstrip("/")


def default_short_name(url: str) -> str:
    """A readable short name from a URL's host: "desk.acme.com" gives "desk"."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or "xurrent"
    first = host.split(".")[0] if not host.replace(".", "").isdigit() else "xurrent"
    return first[:40] or "xurrent"


class Role(models.TextChoices):
    SOURCE = "source", "Source"
    DESTINATION = "destination", "Destination"


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    ACTIVE = "active", "Active"
    DEACTIVATED = "deactivated", "Deactivated"
    ERROR = "error", "Error"


class RemoteStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DEACTIVATED = "deactivated", "Deactivated"
    DELETED = "deleted", "Deleted"


class ModeChangeError(ValueError):
    """Raised when code tries to change a connection's mode: it is final."""


class ConnectionQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status=Status.PENDING)

    def with_name(self, name: str):
        return self.filter(name__iexact=name.strip())


class Connection(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField("connection name", max_length=100)
    description = models.TextField(max_length=1000, blank=True)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    role = models.CharField(max_length=12, choices=Role.choices)
    local_short_name = models.CharField("local instance short name", max_length=40)
    remote_short_name = models.CharField("remote instance short name", max_length=40)
    remote_url = models.URLField(
        "remote instance URL",
        max_length=500,
        blank=True,
        help_text="Empty while a private-network destination has not accepted yet.",
    )
    remote_uid = models.UUIDField("remote node uid", null=True, blank=True)
    remote_connection_id = models.CharField(max_length=64, blank=True)
    remote_platform = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    status_reason = models.CharField(max_length=255, blank=True)
    remote_status = models.CharField(
        "status on the remote side", max_length=12, choices=RemoteStatus.choices, blank=True
    )
    remote_status_at = models.DateTimeField(null=True, blank=True)
    # Key for the JWTs the two nodes sign their calls with. Never shown or logged.
    shared_secret = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = ConnectionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="connection_name_unique_ci"),
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        # The default repr would be harmless, but be explicit: never the secret.
        return f"<Connection {self.id} {self.name!r} {self.status}>"

    def save(self, *args, **kwargs) -> None:
        saved_mode = getattr(self, "_saved_mode", None)
        if saved_mode is not None and self.mode != saved_mode:
            raise ModeChangeError(
                "The mode of a connection is chosen once, when it is initiated, "
                "and can never change. Create a new connection instead."
            )
        super().save(*args, **kwargs)
        self._saved_mode = self.mode

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._saved_mode = instance.__dict__.get("mode")
        return instance

    # --- derived ---------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        """Both sides live on this node (the destination URL was this node's own)."""
        return self.remote_uid is not None and self.remote_uid == GeneralSettings.load().uid

    @property
    def remote_label(self) -> str:
        return self.remote_url or "private network"

    # --- state changes: each writes its event in the same transaction ------------------

    def _change_status(
        self,
        to: str,
        kind: str,
        *,
        user=None,
        by_remote: bool = False,
        reason: str = "",
        message: str = "",
        extra_fields: tuple[str, ...] = (),
    ) -> ConnectionEvent:
        with transaction.atomic():
            before = self.status
            self.status = to
            self.status_reason = reason[:255]
            self.save(update_fields=["status", "status_reason", *extra_fields])
            return self.record(
                kind,
                message or reason,
                user=user,
                by_remote=by_remote,
                from_status=before,
                to_status=to,
            )

    def activate(self, *, user=None, by_remote: bool = False, message: str = ""):
        extra: tuple[str, ...] = ()
        if self.activated_at is None:
            self.activated_at = timezone.now()
            extra = ("activated_at",)
        return self._change_status(
            Status.ACTIVE,
            EventKind.ACTIVATED,
            user=user,
            by_remote=by_remote,
            message=message or "Connection activated.",
            extra_fields=extra,
        )

    def deactivate(self, *, user=None, by_remote: bool = False, reason: str = ""):
        return self._change_status(
            Status.DEACTIVATED,
            EventKind.DEACTIVATED,
            user=user,
            by_remote=by_remote,
            reason=reason,
            message=reason or "Connection deactivated.",
        )

    def mark_error(self, reason: str, *, user=None, by_remote: bool = False):
        return self._change_status(
            Status.ERROR, EventKind.ERROR, user=user, by_remote=by_remote, reason=reason
        )

    def record_remote_status(self, status: str, reason: str = "") -> ConnectionEvent:
        """The peer told us what it did with its side."""
        with transaction.atomic():
            self.remote_status = status
            self.remote_status_at = timezone.now()
            self.save(update_fields=["remote_status", "remote_status_at"])
            text = f"The remote side is now {status}."
            if reason:
                text = f"{text} Reason: {reason}"
            return self.record(EventKind.REMOTE_STATUS, text, by_remote=True)

    def record(
        self,
        kind: str,
        message: str = "",
        *,
        user=None,
        by_remote: bool = False,
        from_status: str = "",
        to_status: str = "",
    ) -> ConnectionEvent:
        return ConnectionEvent.objects.create(
            connection=self,
            connection_name=self.name,
            kind=kind,
            actor_user=user if user is not None and user.is_authenticated else None,
            actor_remote=self.remote_short_name if by_remote else "",
            from_status=from_status,
            to_status=to_status,
            message=message[:500],
        )


class EventKind(models.TextChoices):
    CREATED = "created", "Created"
    INVITATION_ISSUED = "invitation_issued", "Invitation issued"
    INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
    ACCEPTED = "accepted", "Invitation accepted"
    ACTIVATED = "activated", "Activated"
    DEACTIVATED = "deactivated", "Deactivated"
    ERROR = "error", "Error"
    REMOTE_STATUS = "remote_status", "Remote status"
    RULES_CHANGED = "rules_changed", "Sync rules changed"
    DELETED = "deleted", "Deleted"


class ConnectionEvent(models.Model):
    """One line of a connection's history. Kept when the connection is deleted."""

    connection = models.ForeignKey(
        Connection, null=True, on_delete=models.SET_NULL, related_name="events"
    )
    # A copy of the name, so the history still reads well after a delete.
    connection_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_remote = models.CharField(
        "remote node", max_length=40, blank=True, help_text="Set when the remote node did it."
    )
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.connection_name}: {self.get_kind_display()}"

    @property
    def actor(self) -> str:
        if self.actor_user_id:
            return str(self.actor_user)
        if self.actor_remote:
            return f"remote node {self.actor_remote}"
        return "system"


class SyncRuleVersion(models.Model):
    """One saved version of a connection's sync rules (this side only, Script mode)."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="rule_versions"
    )
    number = models.PositiveIntegerField()
    outgoing = models.TextField(blank=True)
    incoming = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["connection", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "number"], name="rule_version_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection} rules v{self.number}"

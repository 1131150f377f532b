"""The node's General Settings, its connections and what happens to them."""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import connections as db_connections
from django.db import models, transaction
from django.db.models.functions import Lower
from django.urls import reverse
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


REMOTE_DELETED_REASON = "deleted on the remote side"


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

    def get_absolute_url(self) -> str:
        return reverse("connections:detail", args=[self.pk])

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
    def awaits_acceptance(self) -> bool:
        """This node initiated it and nobody accepted yet: it has an invitation code."""
        return self.role == Role.SOURCE and self.status == Status.PENDING

    @property
    def status_in_words(self) -> str:
        """The status as the end of a sentence: "pending", or "in error (why)", not "error"."""
        if self.status == Status.ERROR:
            reason = f" ({self.status_reason})" if self.status_reason else ""
            return f"in error{reason}"
        return self.get_status_display().lower()

    @property
    def remote_label(self) -> str:
        return self.remote_url or "private network"

    @property
    def is_paired(self) -> bool:
        """The handshake is done: this side knows its peer and the key to sign calls with."""
        return bool(
            self.status != Status.PENDING
            and self.remote_uid
            and self.remote_connection_id
            and self.shared_secret
        )

    @property
    def can_reach_peer(self) -> bool:
        """This node can call the peer: it has the peer's URL, or the peer is itself."""
        return self.is_paired and (bool(self.remote_url) or self.is_local)

    @property
    def can_deactivate(self) -> bool:
        return self.status == Status.ACTIVE

    @property
    def can_activate(self) -> bool:
        return self.status == Status.DEACTIVATED

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

    def record_remote_status(
        self, status: str, reason: str = "", *, changed_at: datetime | None = None
    ) -> ConnectionEvent:
        """The peer told us what it did with its side."""
        with transaction.atomic():
            self.remote_status = status
            self.remote_status_at = changed_at or timezone.now()
            self.save(update_fields=["remote_status", "remote_status_at"])
            text = f"The remote side is now {status}."
            if reason:
                text = f"{text} Reason: {reason}"
            return self.record(EventKind.REMOTE_STATUS, text, by_remote=True)

    def apply_remote_status(
        self, status: str, reason: str = "", *, changed_at: datetime | None = None
    ) -> bool:
        """Take in a status the peer reported; False when the report was stale.

        Notifications can arrive out of order (a retried old one after a newer one), so
        a report older than the one already recorded changes nothing. `changed_at` comes
        from the peer's clock and is only compared with earlier reports of the same peer.
        """
        with transaction.atomic():
            # Two reports handled at once must not both pass the staleness check.
            Connection.objects.select_for_update().filter(pk=self.pk).exists()
            self.refresh_from_db(fields=["status", "remote_status", "remote_status_at"])
            if (
                changed_at is not None
                and self.remote_status_at is not None
                and changed_at <= self.remote_status_at
            ):
                return False
            self.record_remote_status(status, reason, changed_at=changed_at)
            if status == RemoteStatus.DELETED:
                # The peer is gone: nothing it was still to be told can reach it now.
                self.notifications.pending().update(
                    state=NotificationState.CANCELLED,
                    last_error="The remote side deleted the connection.",
                    signing_key="",
                )
                if self.status != Status.ERROR:
                    self.mark_error(REMOTE_DELETED_REASON, by_remote=True)
        return True

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


class NotificationState(models.TextChoices):
    PENDING = "pending", "Not delivered yet"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed for good"


class PeerNotificationQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(state=NotificationState.PENDING)

    def unclaimed(self, now: datetime | None = None):
        """Pending notifications that no sender is holding right now."""
        now = now or timezone.now()
        return self.pending().filter(
            models.Q(claimed_until__isnull=True) | models.Q(claimed_until__lte=now)
        )

    def due(self, now: datetime | None = None):
        """Unclaimed pending notifications whose next attempt has come."""
        now = now or timezone.now()
        return self.unclaimed(now).filter(next_attempt_at__lte=now)

    def settled_before(self, moment: datetime):
        """Rows nobody needs any more (delivered, cancelled or failed long enough ago)."""
        return self.exclude(state=NotificationState.PENDING).filter(created_at__lt=moment)

    def claim(self, limit: int) -> list[PeerNotification]:
        """Take up to `limit` of these rows for sending, so that no other sender takes them.

        On PostgreSQL the rows are locked with SELECT … FOR UPDATE SKIP LOCKED, so
        senders on several servers each get different rows without waiting for each
        other; on SQLite the write transaction itself keeps senders apart. The claim is a
        lease, not a lock held during the call: the lock lasts only for this short
        transaction, and a sender that dies mid-call frees its rows when the lease ends.
        """
        now = timezone.now()
        token = uuid.uuid4()
        with transaction.atomic(using=self.db):
            rows = self.order_by("next_attempt_at", "id")
            if db_connections[self.db].features.has_select_for_update_skip_locked:
                rows = rows.select_for_update(skip_locked=True)
            ids = list(rows.values_list("pk", flat=True)[:limit])
            if not ids:
                return []
            PeerNotification.objects.filter(pk__in=ids).update(
                claimed_until=now + PeerNotification.CLAIM_LEASE,
                claim_token=token,
                attempts=models.F("attempts") + 1,
            )
        return list(PeerNotification.objects.filter(pk__in=ids, claim_token=token))


class PeerNotification(models.Model):
    """The outbox: telling the peer what this side did, until the peer has heard it.

    A row carries everything needed to sign and send it (the peer's address and ids and
    the key), because a "deleted" notification outlives its connection row.
    """

    # Retries wait 15 s, 30 s, 1 min, … up to an hour between attempts, never giving up
    # on a peer that is merely unreachable.
    BACKOFF_BASE = timedelta(seconds=15)
    BACKOFF_MAX = timedelta(hours=1)
    # How long a sender may hold a claimed row before another sender takes it over
    # (a sender that died mid-call must not strand its rows).
    CLAIM_LEASE = timedelta(minutes=2)

    connection = models.ForeignKey(
        Connection,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )
    connection_name = models.CharField(max_length=100)
    status = models.CharField(
        "status told to the peer", max_length=12, choices=RemoteStatus.choices
    )
    reason = models.CharField(max_length=255, blank=True)
    changed_at = models.DateTimeField(
        help_text="When this side changed; lets the peer ignore a late, older notification."
    )
    remote_url = models.URLField("remote instance URL", max_length=500)
    remote_uid = models.UUIDField("remote node uid")
    remote_connection_id = models.CharField(max_length=64)
    # The key to sign with once the connection row may be gone. Never shown or logged;
    # wiped as soon as the row is settled.
    signing_key = models.CharField(max_length=64, blank=True, editable=False)
    state = models.CharField(
        max_length=12, choices=NotificationState.choices, default=NotificationState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = PeerNotificationQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="notification_due_idx")]

    def __str__(self) -> str:
        return f"{self.connection_name}: tell the peer {self.status}"

    def __repr__(self) -> str:
        return f"<PeerNotification {self.pk} {self.status} {self.state}>"

    @classmethod
    def for_connection(
        cls, connection: Connection, status: str, reason: str = ""
    ) -> PeerNotification:
        """Queue telling the peer of `connection` that this side is now `status`."""
        with transaction.atomic():
            # Only the newest state matters to the peer: drop older unsent ones that no
            # sender holds right now (a held one may be mid-call; the peer's ordering
            # check takes care of it).
            now = timezone.now()
            connection.notifications.unclaimed(now).update(
                state=NotificationState.CANCELLED,
                last_error="Superseded by a newer change.",
                signing_key="",
            )
            return cls.objects.create(
                connection=connection,
                connection_name=connection.name,
                status=status,
                reason=reason[:255],
                changed_at=now,
                remote_url=connection.remote_url,
                remote_uid=connection.remote_uid,
                remote_connection_id=connection.remote_connection_id,
                signing_key=connection.shared_secret,
            )

    def backoff(self) -> timedelta:
        """The wait before the next attempt, doubling per failure, with a little jitter."""
        step = self.BACKOFF_BASE * (2 ** min(max(self.attempts - 1, 0), 12))
        step = min(step, self.BACKOFF_MAX)
        return step * random.uniform(0.9, 1.1)

    # Settling a row only counts while this sender still holds the claim: if its lease
    # ran out and another sender took the row over, the other sender settles it.

    def mark_delivered(self) -> bool:
        return self._settle(
            state=NotificationState.DELIVERED, delivered_at=timezone.now(), last_error=""
        )

    def mark_failed(self, error: str) -> bool:
        """The peer answered in a way no retry can change (it no longer knows us)."""
        return self._settle(state=NotificationState.FAILED, last_error=error[:500])

    def mark_attempt_failed(self, error: str) -> bool:
        return self._update(
            last_error=error[:500],
            next_attempt_at=timezone.now() + self.backoff(),
            claimed_until=None,
            claim_token=None,
        )

    def _settle(self, **values) -> bool:
        return self._update(**values, signing_key="", claimed_until=None, claim_token=None)

    def _update(self, **values) -> bool:
        rows = type(self).objects.filter(
            pk=self.pk, claim_token=self.claim_token, state=NotificationState.PENDING
        )
        done = rows.update(**values) == 1
        if done:
            for name, value in values.items():
                setattr(self, name, value)
        return done


class UsedTokenQuerySet(models.QuerySet):
    def expired(self):
        return self.filter(expires_at__lt=timezone.now())


class UsedToken(models.Model):
    """A node token's id, kept until the token could no longer pass the expiry check.

    In the database rather than the cache: the default cache lives in one process, and a
    replayed token sent to another worker or server must be refused all the same.
    """

    # SHA-256 of "issuer uid\njti": fixed length, and the raw jti never stored.
    digest = models.CharField(max_length=64, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)

    objects = UsedTokenQuerySet.as_manager()

    def __str__(self) -> str:
        return self.digest

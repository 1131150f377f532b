"""Invitations: the source side's record of an invitation code it handed out."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from connections.models import Connection, EventKind, Peer, real_user
from nodes.fields import NodeURLField, ShortNameField


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationQuerySet(models.QuerySet):
    def valid(self):
        """Invitations that can still be accepted."""
        return self.filter(
            revoked_at__isnull=True, accepted_at__isnull=True, expires_at__gt=timezone.now()
        )

    def expired(self):
        return self.filter(accepted_at__isnull=True, expires_at__lte=timezone.now())


class Invitation(models.Model):
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="invitations")
    # Only the hash is kept: the code itself is shown once and never stored.
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    destination_uid = models.UUIDField(
        "expected destination uid",
        null=True,
        blank=True,
        help_text="Learnt from the destination at initiation; empty without a URL.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    # Set once, when the code is shown to the admin: it is never shown again.
    shown_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    acceptor_uid = models.UUIDField(null=True, blank=True)
    acceptor_url = NodeURLField(blank=True)
    acceptor_short_name = ShortNameField(blank=True)
    acceptor_connection_id = models.CharField(max_length=64, blank=True)
    acceptor_platform = models.CharField(max_length=20, blank=True)
    # The two X25519 public keys the shared secret was agreed with (public values: the
    # secret never crosses the wire). A repeat of the accept call must send the same key.
    acceptor_public_key = models.CharField(max_length=44, blank=True, editable=False)
    issuer_public_key = models.CharField(max_length=44, blank=True, editable=False)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation for {self.connection}"

    def __repr__(self) -> str:
        return f"<Invitation {self.pk} for {self.connection_id}>"

    @classmethod
    def issue(
        cls, connection: Connection, token_hash: str, *, destination_uid, expires_at, user=None
    ) -> Invitation:
        """A new invitation for `connection`; only the hash of its token is kept."""
        with transaction.atomic():
            invitation = cls.objects.create(
                connection=connection,
                token_hash=token_hash,
                destination_uid=destination_uid,
                created_by=real_user(user),
                expires_at=expires_at,
            )
            connection.record(
                EventKind.INVITATION_ISSUED,
                f"Invitation issued, valid until {expires_at:%Y-%m-%d %H:%M} UTC.",
                user=user,
            )
        return invitation

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "valid"

    def revoke(self, *, user=None) -> bool:
        """Make the code useless; False when it was already accepted or revoked."""
        if self.revoked_at is not None or self.accepted_at is not None:
            return False
        with transaction.atomic():
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
            self.connection.record(
                EventKind.INVITATION_REVOKED,
                "The invitation code was revoked; it can no longer be accepted.",
                user=user,
            )
        return True

    def mark_shown(self) -> None:
        """The code was shown to the admin: from now on it is never shown again."""
        if self.shown_at is None:
            self.shown_at = timezone.now()
            type(self).objects.filter(pk=self.pk, shown_at__isnull=True).update(
                shown_at=self.shown_at
            )

    def is_redeemed_by(self, acceptor: Peer, public_key: str) -> bool:
        """This acceptor (node uid, its connection id and its public key) is the one that
        redeemed the code: a repeat of its call, after an answer that got lost."""
        return (
            self.accepted_at is not None
            and str(self.acceptor_uid) == str(acceptor.uid)
            and self.acceptor_connection_id == acceptor.connection_id
            and self.acceptor_public_key == public_key
        )

    def redeem(self, acceptor: Peer, *, acceptor_public_key: str, issuer_public_key: str) -> None:
        """Record who accepted the code, and the public keys; from now on nobody else can."""
        self.accepted_at = timezone.now()
        self.acceptor_uid = acceptor.uid
        self.acceptor_url = acceptor.url
        self.acceptor_short_name = acceptor.short_name
        self.acceptor_platform = acceptor.platform
        self.acceptor_connection_id = acceptor.connection_id
        self.acceptor_public_key = acceptor_public_key
        self.issuer_public_key = issuer_public_key
        self.save(
            update_fields=[
                "accepted_at",
                "acceptor_uid",
                "acceptor_url",
                "acceptor_short_name",
                "acceptor_platform",
                "acceptor_connection_id",
                "acceptor_public_key",
                "issuer_public_key",
            ]
        )

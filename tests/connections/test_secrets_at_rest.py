"""Shared secrets and outbox signing keys are encrypted in the database, with key rotation."""

from __future__ import annotations

import base64
import secrets
import uuid
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.management import CommandError, call_command
from django.db import connection as db
from django.db.migrations.executor import MigrationExecutor
from django.forms.models import fields_for_model
from django.utils import timezone

from connections.models import Connection, PeerNotification
from exalate_site.checks import check_secret_keys_are_set
from nodes import encryption
from nodes.fields import SealedSecret
from tests.connections.peers import make_paired
from tests.test_settings import run_django

BEFORE = ("connections", "0005_field_rules_on_the_fields")
KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))


def raw_column(table: str, column: str) -> list[str]:
    """What the database itself holds, read past the ORM."""
    with db.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table}")  # noqa: S608 - fixed names
        return [row[0] for row in cursor.fetchall()]


def raw_secrets() -> list[str]:
    return raw_column("connections_connection", "shared_secret") + raw_column(
        "connections_peernotification", "signing_key"
    )


def notify(connection: Connection) -> PeerNotification:
    return PeerNotification.for_connection(connection, "deactivated")


def opens_with(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
    except Exception:  # noqa: BLE001 - InvalidToken, or not a token at all
        return False
    return True


@pytest.fixture
def keys(settings):
    """`keys("A", "B")` sets EXALATE_SECRET_KEYS to those of the three test keys."""
    named = {"A": KEY_A, "B": KEY_B, "C": KEY_C}

    def use(*names: str) -> None:
        settings.EXALATE_SECRET_KEYS = [named[name] for name in names]

    return use


def rotate() -> str:
    out = StringIO()
    call_command("rotate_secret_keys", stdout=out)
    return out.getvalue()


# --- at rest ------------------------------------------------------------------------------


def test_the_database_never_holds_a_secret_in_clear(node):
    connection = make_paired()
    notification = notify(connection)
    secret = connection.shared_secret
    stored = raw_secrets()
    assert len(stored) == 2
    assert all(value and secret not in value for value in stored)
    assert stored[0] != stored[1]  # each encryption is a new token
    assert Connection.objects.get(pk=connection.pk).shared_secret == secret
    assert PeerNotification.objects.get(pk=notification.pk).signing_key == secret


def test_no_secret_stays_empty_and_a_settled_notification_wipes_its_key(node):
    pending = make_paired(status="pending", shared_secret="")
    assert Connection.objects.get(pk=pending.pk).shared_secret == ""
    connection = make_paired(name="Other")
    notify(connection)
    PeerNotification.objects.cancel("test")
    assert raw_column("connections_peernotification", "signing_key") == [""]
    assert raw_column("connections_connection", "shared_secret").count("") == 1


def test_the_secret_fields_are_in_no_form(node):
    assert "shared_secret" not in fields_for_model(Connection)
    assert "signing_key" not in fields_for_model(PeerNotification)


def test_without_the_setting_the_key_comes_from_secret_key(node, settings):
    settings.EXALATE_SECRET_KEYS = []
    connection = make_paired()
    [token] = raw_column("connections_connection", "shared_secret")
    assert opens_with(encryption.derived_key(settings.SECRET_KEY).decode(), token)
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    # Unreadable now: it reads as no secret (the connection is not usable), is logged...
    reread = Connection.objects.get(pk=connection.pk)
    assert not reread.is_paired  # told before the secret is read...
    assert reread.shared_secret == ""
    assert not reread.is_paired  # ...and after
    # ...and a save writes back what was there, so the right key brings it back.
    reread.save()
    assert raw_column("connections_connection", "shared_secret") == [token]


# --- decrypted when read, not when loaded ------------------------------------------------


@pytest.fixture
def decryptions(monkeypatch) -> list[str]:
    """The tokens decrypted from here on."""
    done: list[str] = []
    decrypt = encryption.decrypt

    def counted(token: str) -> str:
        done.append(token)
        return decrypt(token)

    monkeypatch.setattr(encryption, "decrypt", counted)
    return done


def test_a_secret_is_decrypted_when_first_read_not_when_its_row_is(node, decryptions):
    secret = make_paired().shared_secret
    reread = Connection.objects.get()
    assert reread.is_paired
    assert decryptions == []
    assert reread.shared_secret == secret
    assert reread.shared_secret == secret
    assert len(decryptions) == 1


def test_a_secret_never_read_is_saved_back_as_it_was(node, decryptions):
    connection = make_paired()
    notify(connection)
    before = raw_secrets()
    Connection.objects.get().save()
    PeerNotification.objects.get().save()
    assert raw_secrets() == before
    assert decryptions == []


def test_values_give_the_secret_sealed(node):
    secret = make_paired().shared_secret
    [sealed] = Connection.objects.values_list("shared_secret", flat=True)
    assert isinstance(sealed, SealedSecret)
    assert secret not in repr(sealed)
    assert sealed.open() == secret


def test_is_readable_agrees_with_decrypt(node, keys):
    keys("A")
    token = encryption.encrypt("a secret")
    tampered = token[:50] + ("B" if token[50] == "A" else "A") + token[51:]
    other = Fernet(KEY_C.encode()).encrypt(b"a secret").decode()
    for value in [token, tampered, other, "not a token", "é", token[:40]]:
        readable = not isinstance(encryption.decrypt(value), encryption.UnreadableSecret)
        assert encryption.is_readable(value) == readable, value
    assert encryption.is_readable(token)
    keys("B")
    assert not encryption.is_readable(token)


def test_the_key_derived_from_secret_key_is_its_hkdf_sha256(settings):
    # Computed with the standard library; it must stay the key that earlier versions
    # derived with cryptography's HKDF, or every secret stored under it is lost.
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"exalate-for-xurrent",
        info=b"secrets at rest, v1",
    )
    expected = base64.urlsafe_b64encode(hkdf.derive(settings.SECRET_KEY.encode()))
    assert encryption.derived_key(settings.SECRET_KEY) == expected


def test_the_connections_pages_decrypt_no_secret(admin_client, node, decryptions):
    paired = make_paired()
    confirming = make_paired(name="Confirming", status="pending")
    waiting = make_paired(name="Waiting", status="pending", shared_secret="", remote_uid=None)
    listing = admin_client.get("/connections/")
    assert "Accepted, waiting for confirmation" in listing.content.decode()
    asked = ",".join(f"{c.id}:active" for c in (paired, confirming, waiting))
    refresh = admin_client.get("/connections/", {"status_of": asked}).json()
    assert "Accepted, waiting for confirmation" in refresh[str(confirming.id)]["html"]
    for connection in (paired, confirming, waiting):
        assert admin_client.get(f"/connections/{connection.id}/").status_code == 200
    assert decryptions == []


# --- keys and rotation ------------------------------------------------------------------


def test_the_first_key_encrypts_and_every_key_decrypts(node, keys):
    keys("A")
    connection = make_paired()
    keys("B", "A")
    assert Connection.objects.get(pk=connection.pk).shared_secret == connection.shared_secret
    make_paired(name="Newer")
    tokens = raw_column("connections_connection", "shared_secret")
    assert sorted(opens_with(KEY_B, token) for token in tokens) == [False, True]


def test_rotate_secret_keys_moves_every_secret_to_the_first_key(node, keys):
    keys("A")
    connection = make_paired()
    notify(connection)
    already = make_paired(name="Already")
    keys("B", "A")
    already.save()  # written again: now under B
    output = rotate()
    assert "connections.Connection.shared_secret: 1 re-encrypted, 1 already" in output
    assert "connections.PeerNotification.signing_key: 1 re-encrypted, 0 already" in output
    assert all(opens_with(KEY_B, token) for token in raw_secrets())
    keys("B")  # the old key can go now
    assert Connection.objects.get(pk=connection.pk).shared_secret == connection.shared_secret
    assert PeerNotification.objects.get().signing_key == connection.shared_secret
    assert "0 re-encrypted, 2 already" in rotate()


def test_moving_from_the_derived_key_to_the_setting_needs_only_a_rotation(node, settings, keys):
    settings.EXALATE_SECRET_KEYS = []
    connection = make_paired()
    keys("A")
    assert Connection.objects.get(pk=connection.pk).shared_secret == connection.shared_secret
    rotate()
    settings.SECRET_KEY = "rotated-secret-key-" + "y" * 40
    assert Connection.objects.get(pk=connection.pk).shared_secret == connection.shared_secret


def test_rotation_leaves_what_no_key_opens_and_says_so(node, keys):
    keys("A")
    connection = make_paired()
    [token] = raw_column("connections_connection", "shared_secret")
    keys("C")
    with pytest.raises(CommandError, match="1 secret.*cannot be decrypted"):
        rotate()
    assert raw_column("connections_connection", "shared_secret") == [token]
    keys("C", "A")
    rotate()
    keys("C")
    assert Connection.objects.get(pk=connection.pk).shared_secret == connection.shared_secret


# --- settings and the system check ------------------------------------------------------


def test_a_value_that_is_not_a_fernet_key_stops_the_node_at_start():
    result = run_django(
        "import django; django.setup()", DEBUG="1", EXALATE_SECRET_KEYS=f"{KEY_A},not-a-key"
    )
    assert result.returncode != 0
    assert "EXALATE_SECRET_KEYS" in result.stderr


def test_production_without_its_own_secret_keys_warns(settings):
    settings.DEBUG = False
    settings.EXALATE_SECRET_KEYS = []
    [warning] = check_secret_keys_are_set(None)
    assert warning.id == "exalate.W002"
    assert "SECRET_KEY" in warning.msg
    settings.EXALATE_SECRET_KEYS = [KEY_A]
    assert check_secret_keys_are_set(None) == []
    settings.EXALATE_SECRET_KEYS = []
    settings.DEBUG = True
    assert check_secret_keys_are_set(None) == []


# --- the data migration -----------------------------------------------------------------


def migrate(target):
    executor = MigrationExecutor(db)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_the_plain_secrets_already_stored():
    latest = MigrationExecutor(db).loader.graph.leaf_nodes()
    old = migrate([BEFORE])
    try:
        secret = secrets.token_urlsafe(32)
        row = old.get_model("connections", "Connection").objects.create(
            name="Old",
            mode="script",
            role="source",
            local_short_name="a",
            remote_short_name="b",
            status="active",
            shared_secret=secret,
        )
        old.get_model("connections", "PeerNotification").objects.create(
            connection_id=row.pk,
            connection_name="Old",
            status="deactivated",
            changed_at=timezone.now(),
            remote_url="https://b.example",
            remote_uid=uuid.uuid4(),
            remote_connection_id="x",
            signing_key=secret,
        )
        assert raw_secrets() == [secret, secret]  # how it was stored before

        migrate(latest)
        assert all(value and secret not in value for value in raw_secrets())
        assert Connection.objects.get(pk=row.pk).shared_secret == secret
        assert PeerNotification.objects.get().signing_key == secret

        migrate([BEFORE])  # and back: plain again, the same secret
        assert raw_secrets() == [secret, secret]
    finally:
        migrate(latest)


# --- dumpdata and loaddata -----------------------------------------------------------------


def test_dumpdata_writes_no_secret_in_clear_and_loaddata_brings_it_back(node, tmp_path):
    connection = make_paired()
    secret = connection.shared_secret
    Connection.objects.get(pk=connection.pk).shared_secret  # noqa: B018 - one read and one not
    dump = tmp_path / "connections.json"
    call_command("dumpdata", "connections.connection", output=str(dump), verbosity=0)
    text = dump.read_text()
    assert secret not in text
    assert '"shared_secret": "fernet-token:gAAAA' in text

    Connection.objects.all().delete()
    call_command("loaddata", str(dump), verbosity=0)
    assert Connection.objects.get(pk=connection.pk).shared_secret == secret
    [stored] = raw_column("connections_connection", "shared_secret")
    assert stored.startswith("gAAAA") and secret not in stored  # encrypted again, not clear


def test_a_secret_set_but_not_saved_is_dumped_encrypted_too(node):
    from django.core import serializers

    connection = make_paired()
    connection.shared_secret = "just-set-secret-value"
    text = serializers.serialize("json", [connection])
    assert "just-set-secret-value" not in text
    [loaded] = serializers.deserialize("json", text)
    assert isinstance(loaded.object.__dict__["shared_secret"], SealedSecret)
    assert loaded.object.shared_secret == "just-set-secret-value"

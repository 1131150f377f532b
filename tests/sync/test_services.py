"""Saving and restoring sync rules: versions, events and what is refused."""

import pytest

from connections.models import Connection, ConnectionEvent, EventKind
from sync import DEFAULT_INCOMING, DEFAULT_OUTGOING, RulesError
from sync.models import SyncRuleVersion
from sync.services import (
    NothingChanged,
    RulesNotEditable,
    StaleRules,
    get_current_rules,
    restore_rules,
    save_rules,
)

OUT_1 = "replica.summary = entity.summary\n"
IN_1 = "entity.summary = replica.summary\n"


def make_connection(mode: str = "script", name: str = "Acme to Globex") -> Connection:
    return Connection.objects.create(
        name=name,
        mode=mode,
        role="source",
        local_short_name="acme",
        remote_short_name="globex",
    )


@pytest.fixture
def connection(db):
    return make_connection()


def rule_events(connection):
    return ConnectionEvent.objects.filter(connection=connection, kind=EventKind.RULES_CHANGED)


def test_a_connection_without_versions_has_the_default_rules(connection):
    current = get_current_rules(connection)
    assert (current.outgoing, current.incoming) == (DEFAULT_OUTGOING, DEFAULT_INCOMING)
    assert current.version is None
    assert current.number is None


def test_saving_makes_version_one_with_its_author_and_an_event(connection, admin_user):
    version = save_rules(connection, OUT_1, IN_1, admin_user, note="first try")
    assert version.number == 1
    assert version.created_by == admin_user
    assert (version.outgoing, version.incoming, version.note) == (OUT_1, IN_1, "first try")
    event = rule_events(connection).get()
    assert event.actor_user == admin_user
    assert "version 1" in event.message
    assert get_current_rules(connection).version == version


def test_each_save_is_a_new_version(connection, admin_user):
    save_rules(connection, OUT_1, IN_1, admin_user)
    second = save_rules(connection, OUT_1 + "replica.key = entity.key\n", IN_1, admin_user)
    assert second.number == 2
    assert list(connection.rule_versions.values_list("number", flat=True)) == [2, 1]
    assert rule_events(connection).count() == 2


def test_version_numbers_belong_to_each_connection(connection, admin_user):
    other = make_connection(name="Acme to Initech")
    save_rules(connection, OUT_1, IN_1, admin_user)
    assert save_rules(other, OUT_1, IN_1, admin_user).number == 1


def test_a_script_that_does_not_compile_saves_nothing(connection, admin_user):
    with pytest.raises(RulesError) as caught:
        save_rules(connection, OUT_1, "entity.summary = (\n", admin_user)
    assert caught.value.problems["incoming"][0].line == 1
    assert not SyncRuleVersion.objects.exists()
    assert not rule_events(connection).exists()


def test_basic_mode_rules_cannot_be_saved(db, admin_user):
    basic = make_connection(mode="basic")
    with pytest.raises(RulesNotEditable):
        save_rules(basic, OUT_1, IN_1, admin_user)
    assert not SyncRuleVersion.objects.exists()


def test_saving_the_same_text_again_makes_no_version(connection, admin_user):
    save_rules(connection, OUT_1, IN_1, admin_user)
    with pytest.raises(NothingChanged) as caught:
        save_rules(connection, OUT_1.replace("\n", "\r\n"), IN_1, admin_user)
    assert caught.value.current.number == 1
    assert connection.rule_versions.count() == 1


def test_saving_the_defaults_pins_them_as_version_one(connection, admin_user):
    version = save_rules(connection, DEFAULT_OUTGOING, DEFAULT_INCOMING, admin_user, based_on=0)
    assert version.number == 1


def test_browser_line_endings_are_stored_as_newlines(connection, admin_user):
    version = save_rules(connection, "replica.a = 1\r\nreplica.b = 2\r\n", IN_1, admin_user)
    assert version.outgoing == "replica.a = 1\nreplica.b = 2\n"


def test_a_save_based_on_an_older_version_is_refused(connection, admin_user):
    save_rules(connection, OUT_1, IN_1, admin_user, based_on=0)
    with pytest.raises(StaleRules) as caught:
        save_rules(connection, "replica.key = entity.key\n", IN_1, admin_user, based_on=0)
    assert caught.value.current.number == 1
    assert connection.rule_versions.count() == 1
    assert save_rules(connection, "replica.key = 1\n", IN_1, admin_user, based_on=1).number == 2


def test_restoring_makes_a_new_version_with_the_old_text(connection, admin_user):
    save_rules(connection, OUT_1, IN_1, admin_user)
    save_rules(connection, "replica.key = entity.key\n", IN_1, admin_user)
    restored = restore_rules(connection, 1, admin_user)
    assert restored.number == 3
    assert restored.outgoing == OUT_1
    assert restored.note == "Restored from version 1."
    assert "restored from version 1" in rule_events(connection).first().message.lower()
    assert connection.rule_versions.count() == 3


def test_restoring_the_version_in_force_changes_nothing(connection, admin_user):
    save_rules(connection, OUT_1, IN_1, admin_user)
    with pytest.raises(NothingChanged):
        restore_rules(connection, 1, admin_user)


def test_restoring_an_unknown_version_fails(connection, admin_user):
    with pytest.raises(SyncRuleVersion.DoesNotExist):
        restore_rules(connection, 7, admin_user)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_saves_at_the_same_moment_get_different_numbers(admin_user):
    import threading

    from django.db import connection as db_connection

    connection = make_connection()
    barrier = threading.Barrier(2)
    numbers, failures = [], []

    def save(text):
        try:
            barrier.wait()
            numbers.append(save_rules(connection, text, IN_1, admin_user).number)
        except Exception as exc:  # reported below
            failures.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=save, args=(f"replica.n = {n}\n",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(numbers) == [1, 2]
    assert rule_events(connection).count() == 2

import datetime as dt

import pytest
import time_machine
from django.db import IntegrityError

from connections.models import Connection, ConnectionEvent, ModeChangeError, Status
from nodes.models import GeneralSettings


@pytest.fixture
def connection(db):
    return Connection.objects.create(
        name="Acme to Globex",
        mode="script",
        role="source",
        local_short_name="acme",
        remote_short_name="globex",
    )


def test_general_settings_are_seeded_from_the_environment(db, settings):
    settings.EXALATE_LICENSE = "paid"
    settings.EXALATE_PUBLIC = False
    settings.EXALATE_NODE_URL = "https://desk.acme.example"
    node = GeneralSettings.load()
    assert node.license == "paid"
    assert node.public is False
    assert node.node_url == "https://desk.acme.example"
    assert node.short_name == "desk"
    assert node.platform == "xurrent"
    assert node.uid is not None


def test_general_settings_are_read_from_the_database_after_seeding(db, settings):
    first = GeneralSettings.load()
    first.license = "free"
    first.save()
    settings.EXALATE_LICENSE = "paid"
    again = GeneralSettings.load()
    assert again.license == "free"
    assert again.uid == first.uid


def test_general_settings_stay_a_single_row(node):
    GeneralSettings(node_url="http://x", short_name="x", license="paid").save()
    assert GeneralSettings.objects.count() == 1


def test_general_settings_cannot_be_deleted(node):
    with pytest.raises(ValueError):
        node.delete()
    assert GeneralSettings.objects.count() == 1


@pytest.mark.parametrize(
    ("license", "modes"),
    [("evaluation", ["basic", "script"]), ("paid", ["basic", "script"]), ("free", ["basic"])],
)
def test_available_modes_follow_the_licence(node, license, modes):
    node.license = license
    node.evaluation_ends_on = dt.date.today() + dt.timedelta(days=5)
    assert node.available_modes() == modes


def test_an_evaluation_past_its_end_date_counts_as_free(node):
    node.license = "evaluation"
    node.evaluation_ends_on = dt.date(2030, 1, 31)
    with time_machine.travel(dt.datetime(2030, 1, 31, 12, tzinfo=dt.UTC)):
        assert node.available_modes() == ["basic", "script"]
    with time_machine.travel(dt.datetime(2030, 2, 1, 12, tzinfo=dt.UTC)):
        assert node.effective_license == "free"
        assert node.available_modes() == ["basic"]


def test_the_mode_of_a_saved_connection_cannot_change(connection):
    connection.mode = "basic"
    with pytest.raises(ModeChangeError):
        connection.save()
    reloaded = Connection.objects.get(pk=connection.pk)
    reloaded.mode = "basic"
    with pytest.raises(ModeChangeError):
        reloaded.save()
    assert Connection.objects.get(pk=connection.pk).mode == "script"


def test_connection_names_are_unique_regardless_of_case(connection):
    with pytest.raises(IntegrityError):
        Connection.objects.create(
            name="ACME TO GLOBEX",
            mode="basic",
            role="source",
            local_short_name="a",
            remote_short_name="b",
        )


def test_each_status_change_writes_an_event(connection, admin_user):
    connection.activate(user=admin_user)
    connection.deactivate(user=admin_user, reason="maintenance")
    connection.mark_error("deleted on the remote side", by_remote=True)
    events = list(connection.events.order_by("created_at", "id"))
    assert [(e.from_status, e.to_status) for e in events] == [
        ("pending", "active"),
        ("active", "deactivated"),
        ("deactivated", "error"),
    ]
    assert events[0].actor_user == admin_user
    assert events[2].actor == "remote node globex"
    connection.refresh_from_db()
    assert connection.status == Status.ERROR
    assert connection.status_reason == "deleted on the remote side"
    assert connection.activated_at is not None


def test_events_outlive_their_connection(connection):
    connection.activate()
    connection.delete()
    event = ConnectionEvent.objects.get()
    assert event.connection is None
    assert event.connection_name == "Acme to Globex"


def test_remote_status_is_recorded_with_an_event(connection):
    connection.record_remote_status("deactivated", "holiday")
    connection.refresh_from_db()
    assert connection.remote_status == "deactivated"
    assert "holiday" in connection.events.get().message

"""The whole flow between two sides, in-process: trigger → event → the other Xurrent."""

from dataclasses import replace

from sync.models import EventState, InboundEvent, SyncEvent, Twin, TwinStatus
from xurrent.client import XurrentError


def test_a_request_matching_a_trigger_appears_on_the_other_side_with_mapped_fields(pair):
    pair.a.trigger("category=incident")
    request = pair.a.xurrent.human_creates(
        subject="Printer on fire", category="incident", impact="high", note="Smoke everywhere"
    )
    pair.a.notice(request["id"])
    pair.sync()

    copies = pair.b.xurrent.all_requests()
    assert len(copies) == 1
    copy = copies[0]
    assert copy["subject"] == "Printer on fire"
    assert copy["impact"] == "high"
    assert copy["category"] == "incident"
    twin_a = Twin.objects.get(connection=pair.a.connection)
    twin_b = Twin.objects.get(connection=pair.b.connection)
    assert copy["sourceID"] == str(twin_a.twin_id) == str(twin_b.twin_id)
    assert pair.b.xurrent.texts(copy["id"]) == ["Smoke everywhere"]
    assert twin_a.remote_request_id == str(copy["id"])
    assert twin_b.remote_request_id == str(request["id"])
    assert twin_b.status == TwinStatus.OPEN
    assert SyncEvent.objects.get(twin=twin_a).state == EventState.APPLIED


def test_after_a_sync_nothing_more_is_written_on_either_side(pair):
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject="Loop?", category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.sync()
    writes = (sum(pair.a.xurrent.writes.values()), sum(pair.b.xurrent.writes.values()))

    # Webhooks of everything (the engine's own writes included) come in again.
    pair.a.notice(request["id"])
    pair.b.notice(*(r["id"] for r in pair.b.xurrent.all_requests()))
    assert pair.sync() == 0
    assert (sum(pair.a.xurrent.writes.values()), sum(pair.b.xurrent.writes.values())) == writes
    assert SyncEvent.objects.count() == 1


def test_an_edit_on_a_and_a_note_on_b_reach_the_other_side_once(pair):
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(
        subject="VPN",
        category="incident",
        impact="low",
        note="It drops",  # the description
    )
    pair.a.notice(request["id"])
    pair.sync()
    copy = pair.b.xurrent.all_requests()[0]

    pair.a.xurrent.human_updates(request["id"], subject="VPN drops", impact="medium")
    pair.a.xurrent.human_adds_note(request["id"], "Rebooted the router")
    pair.b.xurrent.human_adds_note(copy["id"], "Seen it here too")
    pair.a.notice(request["id"])
    pair.b.notice(copy["id"])
    pair.sync()

    copy = pair.b.xurrent.get_request(copy["id"])
    assert copy["subject"] == "VPN drops"
    assert copy["impact"] == "medium"
    texts_a = pair.a.xurrent.texts(request["id"])
    texts_b = pair.b.xurrent.texts(copy["id"])
    assert texts_a == ["It drops", "Rebooted the router", "Seen it here too"]
    assert sorted(texts_b) == sorted(texts_a)
    # Everything settles: no event is left open and a further round does nothing.
    assert not SyncEvent.objects.exclude(state__in=["applied", "superseded"]).exists()
    assert pair.sync() == 0


def test_an_internal_note_stays_on_its_side(pair):
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(
        subject="Secret", category="incident", impact="low", note="What happened"
    )
    pair.a.notice(request["id"])
    pair.sync()
    pair.a.xurrent.human_adds_note(request["id"], "public words")
    pair.a.xurrent.human_adds_note(request["id"], "only for us", internal=True)
    pair.a.notice(request["id"])
    pair.sync()
    copy = pair.b.xurrent.all_requests()[0]
    assert pair.b.xurrent.texts(copy["id"]) == [
        "What happened",
        "public words",
    ]


def test_several_changes_before_the_producer_runs_make_one_event(pair):
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject="one", category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.a.xurrent.human_updates(request["id"], subject="two")
    pair.a.notice(request["id"])
    pair.a.xurrent.human_updates(request["id"], subject="three")
    pair.a.notice(request["id"])
    pair.sync()
    assert SyncEvent.objects.count() == 1
    assert pair.b.xurrent.all_requests()[0]["subject"] == "three"
    assert InboundEvent.objects.get().state == "applied"


def test_a_field_changed_on_both_sides_at_once_keeps_the_source_sides_value(pair):
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject="start", category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.sync()
    copy = pair.b.xurrent.all_requests()[0]

    pair.a.xurrent.human_updates(request["id"], subject="from A", impact="high")
    pair.b.xurrent.human_updates(copy["id"], subject="from B")
    pair.a.notice(request["id"])
    pair.b.notice(copy["id"])
    pair.sync()

    # A initiated the connection (the source side): its value wins on both sides; the
    # field only B changed is not undone, the one only A changed arrives.
    assert pair.a.xurrent.get_request(request["id"])["subject"] == "from A"
    assert pair.b.xurrent.get_request(copy["id"])["subject"] == "from A"
    assert pair.b.xurrent.get_request(copy["id"])["impact"] == "high"
    conflicts = [c for t in Twin.objects.all() for c in t.conflicts]
    assert conflicts and all(c["fields"] == ["summary"] for c in conflicts)
    assert pair.sync() == 0


def test_a_change_on_b_is_not_undone_by_a_replica_from_a_that_had_not_seen_it(pair):
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject="start", category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.sync()
    copy = pair.b.xurrent.all_requests()[0]

    pair.b.xurrent.human_updates(copy["id"], impact="top")
    pair.a.xurrent.human_updates(request["id"], subject="renamed on A")
    pair.a.notice(request["id"])
    pair.b.notice(copy["id"])
    pair.sync()

    for side, request_id in ((pair.a, request["id"]), (pair.b, copy["id"])):
        final = side.xurrent.get_request(request_id)
        assert (final["subject"], final["impact"]) == ("renamed on A", "top")
    assert not any(t.conflicts for t in Twin.objects.all())


def test_applying_an_update_leaves_nothing_to_send_back(pair):
    pair.a.trigger()
    request = pair.a.xurrent.human_creates(subject="v1", category="incident", impact="low")
    pair.a.notice(request["id"])
    pair.sync()
    pair.a.xurrent.human_updates(request["id"], subject="v2", impact="top")
    pair.a.notice(request["id"])
    pair.a.produce()
    pair.a.send()
    pair.b.apply()
    twin = Twin.objects.get(connection=pair.b.connection)
    # The baseline is what Xurrent answered to the write: no read-back is needed.
    assert twin.dirty is False
    assert twin.baseline["summary"] == "v2"
    assert twin.baseline["priority"] == "top"


def test_a_batch_of_changed_requests_is_read_with_one_list_call_and_their_notes(pair):
    pair.a.trigger("category=incident")
    made = [
        pair.a.xurrent.human_creates(
            subject=f"Batch {n}", category="incident", impact="low", note=f"N{n}"
        )
        for n in range(5)
    ]
    pair.a.notice(*(r["id"] for r in made))
    pair.a.xurrent.calls.clear()
    assert pair.a.produce().events == 5
    # One list call (Xurrent's `id` filter) for the five requests, then each one's notes.
    assert pair.a.xurrent.calls["list"] == 1
    assert pair.a.xurrent.calls["get"] == 0
    assert pair.a.xurrent.calls["notes"] == 5
    pair.sync()
    assert sorted(c["subject"] for c in pair.b.xurrent.all_requests()) == [
        f"Batch {n}" for n in range(5)
    ]
    assert all(
        pair.b.xurrent.texts(c["id"]) == [c["subject"].replace("Batch ", "N")]
        for c in pair.b.xurrent.all_requests()
    )


def changed_on_a(pair, number: int, prefix: str) -> list[dict]:
    """`number` requests made on A under a trigger, and noticed: a batch to produce."""
    pair.a.trigger("category=incident")
    made = [
        pair.a.xurrent.human_creates(subject=f"{prefix} {n}", category="incident", impact="low")
        for n in range(number)
    ]
    pair.a.notice(*(r["id"] for r in made))
    return made


def test_a_request_the_list_does_not_show_is_read_alone(pair):
    made = changed_on_a(pair, 3, "Listed")
    hidden = made[1]["id"]
    request_pages = pair.a.xurrent.request_pages

    def without_one(filters=None, **options):
        for page in request_pages(filters, **options):
            yield replace(page, items=[item for item in page.items if item["id"] != hidden])

    pair.a.xurrent.request_pages = without_one
    pair.a.xurrent.calls.clear()
    assert pair.a.produce().events == 3
    assert pair.a.xurrent.calls["get"] == 1  # only the one the list left out


def test_when_the_list_fails_each_request_is_read_alone(pair):
    changed_on_a(pair, 3, "Alone")

    def failing(filters=None, **options):
        raise XurrentError("server_error", "Xurrent answered 503.")
        yield  # a generator, as the client's

    pair.a.xurrent.request_pages = failing
    pair.a.xurrent.calls.clear()
    assert pair.a.produce().events == 3
    assert pair.a.xurrent.calls["get"] == 3

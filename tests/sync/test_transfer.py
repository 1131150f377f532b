"""Rules that travel: a side's rules exported as a file and imported onto another
connection of the same mode, checked like a save, previewed, all or nothing."""

import json

import pytest
from django.contrib.auth import get_user_model

from connections.models import Connection, ConnectionEvent, EventKind
from sync import BASIC_OUTGOING, DEFAULT_INCOMING, DEFAULT_OUTGOING
from sync.models import SyncRuleVersion, Trigger
from sync.services import StaleRules, save_rules
from sync.services.scope import add_trigger
from sync.services.transfer import (
    FORMAT,
    FORMAT_VERSION,
    ImportRefused,
    export_rules,
    export_rules_json,
    import_rules,
    preview_import,
    read_rules_file,
)
from tests.sync.test_views import url

OUT = "replica.summary = entity.summary\nreplica.status = entity.status\n"
IN = "entity.summary = replica.summary\n"


def make(name: str, mode: str = "script") -> Connection:
    return Connection.objects.create(
        name=name, mode=mode, role="source", local_short_name="acme", remote_short_name="globex"
    )


def make_source() -> Connection:
    connection = make("Acme to Globex")
    save_rules(connection, OUT, IN, note="first")
    add_trigger(connection, "category=incident&team=12", note="incidents")
    paused = add_trigger(connection, "impact=top")
    paused.active = False
    paused.save()
    return connection


@pytest.fixture
def source(db):
    return make_source()


@pytest.fixture
def target(db):
    return make("Acme to Initech")


def exported(connection, **changes) -> str:
    data = export_rules(connection)
    data.update(changes)
    return json.dumps(data)


# --- export --------------------------------------------------------------------------------


def test_an_export_holds_both_scripts_the_triggers_and_a_format_version(source):
    data = json.loads(export_rules_json(source))
    assert data["format"] == FORMAT and data["format_version"] == FORMAT_VERSION
    assert data["connection"] == {"name": "Acme to Globex", "mode": "script"}
    assert data["rules_version"] == 1
    assert (data["outgoing"], data["incoming"]) == (OUT, IN)
    assert data["triggers"] == [
        {"query": "category=incident&team=12", "active": True, "note": "incidents"},
        {"query": "impact=top", "active": False, "note": ""},
    ]


def test_an_export_before_any_save_holds_the_defaults(target):
    data = export_rules(target)
    assert (data["outgoing"], data["incoming"]) == (DEFAULT_OUTGOING, DEFAULT_INCOMING)
    assert data["rules_version"] is None and data["triggers"] == []


# --- import --------------------------------------------------------------------------------


def test_an_import_makes_a_new_version_and_brings_the_triggers(source, target):
    save_rules(target, DEFAULT_OUTGOING, DEFAULT_INCOMING)
    preview, version = import_rules(target, read_rules_file(exported(source)))
    assert version.number == 2
    assert (version.outgoing, version.incoming) == (OUT, IN)
    assert version.note == "Imported from “Acme to Globex” version 1."
    triggers = {t.query: (t.active, t.note) for t in target.triggers.all()}
    assert triggers == {
        "category=incident&team=12": (True, "incidents"),
        "impact=top": (False, ""),
    }
    assert [t.query for t in preview.triggers_added] == list(triggers)
    assert ConnectionEvent.objects.filter(
        connection=target, kind=EventKind.RULES_CHANGED, message__contains="version 2"
    ).exists()


def test_the_preview_says_what_changes_and_stores_nothing(source, target):
    add_trigger(target, "category=rfc")
    add_trigger(target, "category=incident&team=12", note="old note")
    preview = preview_import(target, read_rules_file(exported(source)))
    assert preview.scripts_changed and preview.based_on == 0
    assert "-replica.key = entity.key" in [line for _, line in preview.outgoing_diff]
    assert [t.query for t in preview.triggers_added] == ["impact=top"]
    assert [t.query for t in preview.triggers_updated] == ["category=incident&team=12"]
    assert [t.query for t in preview.triggers_switched_off] == ["category=rfc"]
    assert "Trigger switched off: category=rfc" in preview.summary_lines()
    assert not SyncRuleVersion.objects.filter(connection=target).exists()
    assert target.triggers.count() == 2


def test_a_trigger_the_file_lacks_is_switched_off_not_deleted(source, target):
    add_trigger(target, "category=rfc")
    import_rules(target, read_rules_file(exported(source)))
    assert not target.triggers.get(query="category=rfc").active


def test_importing_the_same_rules_again_changes_nothing(source, target):
    rules_file = read_rules_file(exported(source))
    import_rules(target, rules_file)
    preview, version = import_rules(target, rules_file)
    assert version is None and not preview.changes_anything
    assert "Nothing changes" in preview.summary_lines()[-1]
    assert target.rule_versions.count() == 1


def test_a_script_that_does_not_compile_is_refused_with_its_line_and_nothing_imported(
    source, target
):
    text = exported(source, outgoing="replica.summary = entity.summary\nreplica.x = (1\n")
    with pytest.raises(ImportRefused, match=r"the outgoing script, Line 2: '\(' was never closed"):
        import_rules(target, read_rules_file(text))
    assert not target.rule_versions.exists()
    assert not target.triggers.exists()


def test_rules_travel_only_between_connections_of_the_same_mode(source, db):
    basic = make("Basic one", "basic")
    with pytest.raises(ImportRefused, match="same mode"):
        import_rules(basic, read_rules_file(exported(source)))
    assert not basic.triggers.exists()


def test_a_basic_mode_file_brings_only_its_triggers(db):
    basic, other = make("Basic one", "basic"), make("Basic two", "basic")
    add_trigger(basic, "category=incident")
    data = export_rules(basic)
    assert data["outgoing"] == BASIC_OUTGOING
    preview, version = import_rules(other, read_rules_file(json.dumps(data)))
    assert version is None and not preview.scripts_imported
    assert [t.query for t in other.triggers.all()] == ["category=incident"]
    assert not other.rule_versions.exists()


def test_an_import_after_someone_saved_is_stale(source, target):
    rules_file = read_rules_file(exported(source))
    preview = preview_import(target, rules_file)
    save_rules(target, "replica.summary = 'mine'\n", IN)
    with pytest.raises(StaleRules):
        import_rules(target, rules_file, based_on=preview.based_on)
    assert target.rule_versions.count() == 1 and not target.triggers.exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not json at all", "not valid JSON"),
        (json.dumps([1, 2]), "not a sync rules file"),
        (json.dumps({"format": "something-else"}), "not a sync rules file"),
        (json.dumps({"format": FORMAT, "format_version": 99}), "format version 99"),
        (json.dumps({"format": FORMAT, "format_version": 1}), "which mode"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_a_file_that_is_not_a_rules_file_is_refused_in_words(text, words):
    with pytest.raises(ImportRefused, match=words):
        read_rules_file(text)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"outgoing": None}, "no outgoing script"),
        ({"incoming": "x" * 50_001}, "longer than"),
        ({"triggers": "category=incident"}, "must be a list"),
        ({"triggers": [{"query": "just words"}]}, r"Trigger 1 \('just words'\)"),
        ({"triggers": [{"query": "page=2"}]}, "cannot be part of a trigger"),
        ({"triggers": [{"query": "a=1"}, {"query": "a=1"}]}, "twice"),
        ({"triggers": [{"query": "a=1", "active": "yes"}]}, "true or false"),
    ],
)
def test_a_rules_file_with_a_bad_part_is_refused_whole(source, target, changes, words):
    with pytest.raises(ImportRefused, match=words):
        import_rules(target, read_rules_file(exported(source, **changes)))
    assert not target.rule_versions.exists() and not target.triggers.exists()


# --- the pages -----------------------------------------------------------------------------


def test_the_export_is_a_json_download(editor_client, source):
    response = editor_client.get(url(source, "rules_export"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert 'filename="sync-rules-acme-to-globex.json"' in response["Content-Disposition"]
    assert json.loads(response.content)["outgoing"] == OUT


def test_a_viewer_may_export_but_not_import(viewer_client, source):
    assert viewer_client.get(url(source, "rules_export")).status_code == 200
    assert viewer_client.get(url(source, "rules_import")).status_code == 403


def test_an_upload_is_previewed_then_imported_with_a_second_press(editor_client, source, target):
    page = editor_client.get(url(target)).content.decode()
    assert 'id="export-rules"' in page and 'id="import-rules"' in page
    upload = {"rules_file": _file(exported(source))}
    response = editor_client.post(url(target, "rules_import"), upload)
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="import-preview"' in page
    assert "Trigger added: impact=top" in page
    assert "-replica.key = entity.key" in page
    assert not target.rule_versions.exists()  # only a preview so far
    content = response.context["confirm"]["content"].value()
    response = editor_client.post(
        url(target, "rules_import"), {"content": content, "based_on": "0"}
    )
    assert response.status_code == 302
    version = target.rule_versions.get()
    assert version.created_by == editor_client.user
    assert target.triggers.count() == 2
    messages = editor_client.get(url(target)).content.decode()
    assert "Rules imported from “Acme to Globex” version 1: version 1." in messages


def test_a_refused_upload_says_why_and_imports_nothing(editor_client, source, target):
    broken = exported(source, incoming="entity.summary = (\n")
    response = editor_client.post(url(target, "rules_import"), {"rules_file": _file(broken)})
    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="import-refused"' in page and "the incoming script, Line 1" in page
    assert 'id="import-confirm"' not in page
    assert not target.rule_versions.exists()


def test_a_confirm_after_someone_saved_shows_the_preview_again(editor_client, source, target):
    save_rules(target, OUT, "entity.summary = 'theirs'\n", get_user_model().objects.first())
    response = editor_client.post(
        url(target, "rules_import"), {"content": exported(source), "based_on": "0"}
    )
    assert response.status_code == 409
    assert "was saved while you looked at the preview" in response.content.decode()
    assert (
        target.rule_versions.count() == 1 and not Trigger.objects.filter(connection=target).exists()
    )


def _file(text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("rules.json", text.encode(), content_type="application/json")

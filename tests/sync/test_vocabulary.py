"""What a script can use is described once, from the sandbox itself: the fields of
sync/entity.py, the names each direction finds set, the builtins it is handed."""

import json

from sync import DEFAULT_INCOMING, SAMPLE_REPLICA, SAMPLE_REQUEST
from sync.entity import (
    ATTACHMENT_FIELDS,
    COMMENT_FIELDS,
    ENTITY_FIELDS,
    FIELD_ORDER,
    entity_from_request,
    merge_comments,
)
from sync.sandbox import SAFE_BUILTIN_NAMES, SCRIPT_NAMES, execute
from sync.vocabulary import sandbox_description, script_vocabulary


def names(fields):
    return [f.name for f in fields]


def test_the_entity_has_exactly_the_described_fields():
    entity = entity_from_request(SAMPLE_REQUEST)
    assert list(entity) == names(ENTITY_FIELDS) == list(FIELD_ORDER)


def test_comments_and_attachments_have_the_described_fields():
    synced = {**SAMPLE_REQUEST["notes"][1], "remote_id": 7}
    entity = entity_from_request({**SAMPLE_REQUEST, "notes": [SAMPLE_REQUEST["notes"][0], synced]})
    assert set(entity.comments[0]) == set(names(COMMENT_FIELDS))
    assert set(entity.attachments[0]) | {"remote_id"} == set(names(ATTACHMENT_FIELDS))
    merged = merge_comments([], [{"id": 1, "body": "hi"}])
    assert set(merged[0]) <= set(names(COMMENT_FIELDS))


def test_each_direction_finds_the_names_it_is_said_to_find():
    incoming = [n.name for n in SCRIPT_NAMES["incoming"]]
    script = "print(" + ", ".join(incoming) + ")\n"
    data = {"replica": {}, "entity": {}, "first_sync": True, "previous": {}}
    assert execute("incoming", script, data)["ok"]
    outgoing = [n.name for n in SCRIPT_NAMES["outgoing"]]
    assert execute("outgoing", "print(" + ", ".join(outgoing) + ")\n", {"entity": {}})["ok"]
    for name in set(incoming) - set(outgoing):
        answer = execute("outgoing", f"print({name})\n", {"entity": {}})
        assert not answer["ok"]
        assert "NameError" in answer["problems"][0]["message"]


def test_the_vocabulary_is_json_with_fields_names_and_builtins():
    vocabulary = json.loads(json.dumps(script_vocabulary()))
    fields = {f["name"]: f for f in vocabulary["fields"]}
    assert list(fields) == list(FIELD_ORDER)
    assert [f["name"] for f in fields["team"]["fields"]] == ["id", "name"]
    helpers = {n["name"]: n for n in vocabulary["directions"]["incoming"]}
    assert helpers["merge_comments"]["signature"] == "merge_comments(local, remote)"
    assert helpers["merge_comments"]["kind"] == "helper"
    assert {n["name"] for n in vocabulary["directions"]["outgoing"]} == {"entity", "replica"}
    assert vocabulary["builtins"] == sorted(SAFE_BUILTIN_NAMES)


def test_the_description_names_every_field_helper_and_builtin():
    text = sandbox_description()
    for field in ENTITY_FIELDS:
        assert f"- {field.name} ({field.kind})" in text
    assert "merge_attachments(local, remote)" in text
    assert "first_sync" in text
    assert "zip" in text and "import" in text


def test_the_default_incoming_script_uses_only_what_the_vocabulary_offers():
    answer = execute(
        "incoming",
        DEFAULT_INCOMING,
        {"replica": SAMPLE_REPLICA, "entity": {}, "first_sync": True, "previous": {}},
    )
    assert answer["ok"], answer


def test_the_rules_page_carries_the_vocabulary_and_the_editor(admin_client, db):
    from django.templatetags.static import static

    from connections.models import Connection

    bundle = static("js/editor.bundle.js")  # with the hash of its content, as served
    connection = Connection.objects.create(
        name="Acme", mode="script", role="source", local_short_name="a", remote_short_name="b"
    )
    page = admin_client.get(f"/connections/{connection.pk}/rules/").content.decode()
    start = page.index('<script id="script-vocabulary" type="application/json">')
    data = json.loads(page[page.index(">", start) + 1 : page.index("</script>", start)])
    assert data == json.loads(json.dumps(script_vocabulary()))
    assert bundle in page
    assert 'data-editor="python" data-direction="outgoing"' in page
    # The plain page: the same form, no editor.
    plain = admin_client.get(f"/connections/{connection.pk}/rules/?editor=plain").content
    assert b"js/editor.bundle." not in plain and b'name="outgoing"' in plain

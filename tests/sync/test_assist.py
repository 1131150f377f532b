"""AI Assist's service: the prompt (the sandbox's description, never a secret), reading the
model's answer, a draft that does not compile sent back once, the samples' test run, and
the model's failures in words (against a fake OpenAI-compatible server over real HTTP)."""

import copy

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from connections.models import Connection
from nodes.models import GeneralSettings
from sync import DEFAULT_INCOMING, DEFAULT_OUTGOING, SAMPLE_REPLICA, SAMPLE_REQUEST
from sync.entity import ENTITY_FIELDS
from sync.services.assist import (
    REDACTED,
    AssistAsk,
    AssistRefused,
    assist_note,
    build_messages,
    draft_rules,
    known_secrets,
    parse_answer,
)
from sync.services.model_client import ModelError
from tests.sync.conftest import AI_KEY
from tests.sync.fake_model import draft

XURRENT_TOKEN = "xurrent-token-5ecret-0001"
SHARED_SECRET = "shared-secret-5ecret-0003"
GOOD_OUT = "replica.summary = entity.summary\nreplica.status = entity.status\n"
GOOD_IN = "entity.summary = replica.summary\n"
BROKEN_OUT = "replica.summary = (entity.summary\n"


pytestmark = pytest.mark.usefixtures("fresh_allowances")


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("writer", "", "pw-writer-123456")


@pytest.fixture
def with_secrets(node):
    node.set_xurrent_token(XURRENT_TOKEN)
    node.set_ai_api_key(AI_KEY)
    node.save()
    Connection.objects.create(
        name="Secretive",
        mode="script",
        role="source",
        local_short_name="acme",
        remote_short_name="globex",
        shared_secret=SHARED_SECRET,
    )


def ask(words="Send the summary and the status.", directions=("outgoing",), **kwargs):
    values = {
        "words": words,
        "directions": directions,
        "outgoing": DEFAULT_OUTGOING,
        "incoming": DEFAULT_INCOMING,
        "sample_request": copy.deepcopy(SAMPLE_REQUEST),
        "sample_replica": copy.deepcopy(SAMPLE_REPLICA),
    }
    values.update(kwargs)
    return AssistAsk(**values)


# --- the prompt ----------------------------------------------------------------------------


def test_the_prompt_describes_the_sandbox_the_scripts_and_the_words():
    system, user_message = build_messages(ask(words="Only incidents, please."))
    assert system["role"] == "system" and user_message["role"] == "user"
    for field in ENTITY_FIELDS:
        assert f"- {field.name} ({field.kind})" in system["content"]
    assert "merge_comments(local, remote)" in system["content"]
    assert '"outgoing"' in system["content"]  # the answer format
    assert DEFAULT_OUTGOING.strip() in user_message["content"]
    assert DEFAULT_INCOMING.strip() in user_message["content"]
    assert (
        "Write the outgoing script. The admin asks:\nOnly incidents, please."
        in (user_message["content"])
    )


def test_the_samples_go_to_the_model_only_when_the_admin_ticks_the_box():
    subject = SAMPLE_REQUEST["subject"]
    without = "\n".join(m["content"] for m in build_messages(ask()))
    assert subject not in without
    assert "Tomás" not in without
    with_samples = "\n".join(m["content"] for m in build_messages(ask(send_samples=True)))
    assert subject in with_samples
    assert SAMPLE_REPLICA["key"] in with_samples


def test_no_secret_of_the_node_is_ever_in_the_prompt(with_secrets, settings):
    settings.EXALATE_METRICS_TOKEN = "metrics-token-5ecret-0004"
    # Even pasted into a script, the words or a sample, a secret does not leave.
    leaky = ask(
        words=f"Use the token {XURRENT_TOKEN} and {SHARED_SECRET}",
        outgoing=f"# key {AI_KEY}\n" + DEFAULT_OUTGOING,
        sample_request={**SAMPLE_REQUEST, "subject": f"{SHARED_SECRET} {settings.SECRET_KEY}"},
        send_samples=True,
    )
    secrets = known_secrets()
    text = "\n".join(m["content"] for m in build_messages(leaky, secrets))
    for secret in (XURRENT_TOKEN, AI_KEY, SHARED_SECRET, settings.SECRET_KEY, "metrics-token"):
        assert secret not in text
    assert text.count(REDACTED) == 5


def test_a_draft_sends_nothing_secret_over_the_wire(with_secrets, ai_node, fake_model, user):
    fake_model.answer(draft(outgoing=GOOD_OUT))
    draft_rules(ask(words=f"token {XURRENT_TOKEN}", send_samples=True), user)
    (request,) = fake_model.received
    for secret in (XURRENT_TOKEN, SHARED_SECRET):
        assert secret not in str(request.body)
    assert AI_KEY not in str(request.body)
    # The key goes where the endpoint expects it, and only there.
    assert request.headers["Authorization"] == f"Bearer {AI_KEY}"
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "fake-coder"


# --- reading answers -----------------------------------------------------------------------


def test_an_answer_is_read_as_json_even_inside_a_code_fence():
    text = "Here you go:\n```json\n" + draft(outgoing=GOOD_OUT, incoming=GOOD_IN) + "\n```"
    scripts, explanation = parse_answer(text, ("outgoing", "incoming"))
    assert scripts == {"outgoing": GOOD_OUT, "incoming": GOOD_IN}
    assert explanation == "Drafted by the fake model."


def test_a_script_not_asked_for_is_left_out():
    scripts, _ = parse_answer(draft(outgoing=GOOD_OUT, incoming=GOOD_IN), ("incoming",))
    assert scripts == {"incoming": GOOD_IN}


def test_a_lone_python_block_is_taken_when_one_script_was_asked_for():
    scripts, _ = parse_answer(f"Sure!\n```python\n{GOOD_OUT}```\nDone.", ("outgoing",))
    assert scripts == {"outgoing": GOOD_OUT}


@pytest.mark.parametrize(
    "answer", ["I cannot help with that.", '{"outgoing": 42}', '{"note": "nothing"}', "[1, 2]"]
)
def test_an_answer_without_a_draft_is_nonsense_in_words(answer):
    with pytest.raises(ModelError, match="not with a draft") as caught:
        parse_answer(answer, ("outgoing",))
    assert caught.value.kind == "bad_answer"


def test_the_note_of_a_saved_draft_says_it_came_from_ai_assist():
    assert assist_note("", "Send the summary.") == "AI Assist: Send the summary."
    assert assist_note("first try", "Send it.") == "first try (AI Assist: Send it.)"
    long = assist_note("", "word " * 100)
    assert long.startswith("AI Assist: word") and long.endswith("…") and len(long) == 200


# --- drafting ------------------------------------------------------------------------------


def test_a_draft_is_compiled_and_test_run_on_the_samples(ai_node, fake_model, user):
    fake_model.answer(draft(outgoing=GOOD_OUT))
    result = draft_rules(ask(), user)
    assert result.scripts == {"outgoing": GOOD_OUT}
    assert result.compiles and not result.sent_back
    assert result.run.outgoing.ok
    assert result.run.outgoing.result["summary"] == SAMPLE_REQUEST["subject"]
    assert result.run.incoming.ok  # the incoming script the admin had, run as well
    assert ("del", "-replica.key = entity.key") in result.diffs["outgoing"]
    assert len(fake_model.received) == 1


def test_a_draft_that_does_not_compile_is_sent_back_once_with_the_error(ai_node, fake_model, user):
    fake_model.answer(draft(outgoing=BROKEN_OUT)).answer(draft(outgoing=GOOD_OUT))
    result = draft_rules(ask(), user)
    assert result.scripts == {"outgoing": GOOD_OUT}
    assert result.compiles
    assert "never closed" in str(result.sent_back["outgoing"][0])
    first, second = fake_model.received
    assert second.messages[:2] == first.messages
    assert second.messages[2] == {"role": "assistant", "content": draft(outgoing=BROKEN_OUT)}
    assert "Line 1: '(' was never closed" in second.messages[3]["content"]
    assert result.run.outgoing.ok


def test_a_draft_that_still_does_not_compile_is_shown_with_its_error(ai_node, fake_model, user):
    fake_model.answer(draft(outgoing=BROKEN_OUT)).answer(draft(outgoing="import os\n"))
    result = draft_rules(ask(), user)
    assert result.scripts == {"outgoing": "import os\n"}
    assert not result.compiles
    assert result.problems["outgoing"][0].line == 1
    assert "Imports are not allowed" in result.problems["outgoing"][0].message
    assert result.run.outgoing is None and "does not compile" in result.run.outgoing_skipped
    assert len(fake_model.received) == 2  # once sent back, no more


def test_a_second_answer_that_is_nonsense_leaves_the_first_draft_and_its_error(
    ai_node, fake_model, user
):
    fake_model.answer(draft(outgoing=BROKEN_OUT)).answer("Sorry, I am confused.")
    result = draft_rules(ask(), user)
    assert result.scripts == {"outgoing": BROKEN_OUT}
    assert "never closed" in result.problems["outgoing"][0].message


def test_a_runtime_error_of_a_draft_shows_in_its_test_run(ai_node, fake_model, user):
    fake_model.answer(draft(outgoing="replica.summary = entity.summary.upper(1)\n"))
    result = draft_rules(ask(), user)
    assert result.compiles
    assert not result.run.outgoing.ok
    assert result.run.outgoing.problems[0].line == 1


def test_a_slow_model_is_given_up_on_at_the_time_limit(ai_node, fake_model, user, settings):
    settings.EXALATE_AI_TIMEOUT = 1.0
    fake_model.slow(4, draft(outgoing=GOOD_OUT))
    with pytest.raises(ModelError, match="did not answer within 1 seconds") as caught:
        draft_rules(ask(), user)
    assert caught.value.kind == "timeout"


def test_a_refused_key_says_to_check_it(ai_node, fake_model, user):
    fake_model.fail(401, "Incorrect API key provided")
    with pytest.raises(ModelError, match="refused the API key") as caught:
        draft_rules(ask(), user)
    assert caught.value.kind == "refused"


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (404, "not_found", "ending in /v1"),
        (429, "rate_limited", "too many requests"),
        (503, "server_error", "may be down"),
        (400, "bad_answer", "refused the request"),
    ],
)
def test_each_failure_of_the_endpoint_is_told_in_words(
    ai_node, fake_model, user, status, kind, words
):
    fake_model.fail(status)
    with pytest.raises(ModelError, match=words) as caught:
        draft_rules(ask(), user)
    assert caught.value.kind == kind


def test_an_answer_that_is_not_a_chat_completion_is_refused(ai_node, fake_model, user):
    fake_model.raw(200, {"result": "ok"})
    with pytest.raises(ModelError, match="not like an OpenAI-compatible"):
        draft_rules(ask(), user)


def test_an_endpoint_that_is_down_is_told(ai_node, fake_model, user):
    fake_model.stop()
    with pytest.raises(ModelError, match="Could not connect") as caught:
        draft_rules(ask(), user)
    assert caught.value.kind == "unreachable"


def test_a_private_endpoint_is_refused_unless_private_networks_are_allowed(
    ai_node, fake_model, user, settings
):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(ModelError, match="EXALATE_ALLOW_PRIVATE_NETWORKS=true") as caught:
        draft_rules(ask(), user)
    assert caught.value.kind == "blocked"
    assert fake_model.received == []


def test_without_an_endpoint_the_refusal_says_how_to_set_one_up(node, user):
    with pytest.raises(AssistRefused, match="EXALATE_AI_URL"):
        draft_rules(ask(), user)


def test_each_user_has_an_hourly_allowance_of_drafts(ai_node, fake_model, user, settings):
    settings.EXALATE_AI_DRAFTS_PER_HOUR = 2
    other = get_user_model().objects.create_user("other", "", "pw-other-123456")
    for _ in range(3):
        fake_model.answer(draft(outgoing=GOOD_OUT))
    draft_rules(ask(), user)
    draft_rules(ask(), user)
    with pytest.raises(AssistRefused, match="2 drafts this hour") as caught:
        draft_rules(ask(), user)
    assert caught.value.status == 429
    assert len(fake_model.received) == 2  # refused before the model is asked
    draft_rules(ask(), other)  # someone else still may


def test_the_endpoint_settings_come_from_the_environment(db, settings):
    settings.EXALATE_AI_URL = "https://models.example.com/v1"
    settings.EXALATE_AI_MODEL = "gpt-test"
    settings.EXALATE_AI_API_KEY = "sk-from-env-123456"
    node = GeneralSettings.load()
    assert (node.ai_url, node.ai_model, node.ai_api_key) == (
        "https://models.example.com/v1",
        "gpt-test",
        "sk-from-env-123456",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT ai_api_key FROM nodes_generalsettings")
        stored = cursor.fetchone()[0]
    assert stored and "sk-from-env" not in stored  # encrypted at rest

"""AI Assist in a real browser, against a fake OpenAI-compatible server over real HTTP: the
words go out, the draft comes back into the editor with its diff and test run, and Save
makes it a version that says it came from AI Assist. A slow model and a refused key are
told in words, and leave the scripts as they were."""

import pytest

from tests.e2e.conftest import log_in
from tests.livenodes import start_node
from tests.sync.fake_model import FakeModel, draft

pytestmark = pytest.mark.e2e

AI_KEY = "sk-e2e-5ecret-key-0001"
WORDS = "Send only the summary and the status."
GOOD_OUT = "replica.summary = entity.summary\nreplica.status = entity.status\n"
BROKEN_OUT = "replica.summary = (entity.summary\n"
SETUP = """
from connections.models import Connection
c = Connection.objects.create(name="Acme to Globex", mode="script", role="source",
                              local_short_name="acme", remote_short_name="globex")
print(c.pk)
"""


@pytest.fixture(scope="module")
def fake_model():
    fake = FakeModel().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def node(tmp_path_factory, fake_model):
    node = start_node(
        tmp_path_factory.mktemp("assist"),
        "assist",
        EXALATE_AI_URL=fake_model.url,
        EXALATE_AI_MODEL="fake-coder",
        EXALATE_AI_API_KEY=AI_KEY,
        EXALATE_AI_TIMEOUT="3",
    )
    yield node
    node.stop()


@pytest.fixture(scope="module")
def connection_id(node):
    return node.shell(SETUP).splitlines()[-1]


@pytest.fixture
def rules_page(page, node, connection_id, fake_model):
    fake_model.replies.clear()
    fake_model.received.clear()
    log_in(page, node.url, node.username, node.password)
    page.goto(f"{node.url}/connections/{connection_id}/rules/")
    page.wait_for_selector("html[data-editor=ready]")
    return page


def ask(page, words=WORDS, target="outgoing"):
    page.fill("#id_assist_words", words)
    page.check(f'input[name="assist_target"][value="{target}"]')
    page.click("#assist-draft")


def test_a_draft_goes_into_the_editor_with_its_diff_and_is_saved_as_a_version(
    rules_page, fake_model
):
    page = rules_page
    before = page.input_value("#id_outgoing")
    # The first draft does not compile: it goes back once; the model is slow enough for
    # the progress to show.
    fake_model.slow(1.5, draft(outgoing=BROKEN_OUT)).answer(draft(outgoing=GOOD_OUT))
    ask(page)
    assert page.locator("#assist-progress").is_visible()
    assert page.locator("#assist-draft").is_disabled()
    page.wait_for_selector("#assist-draft-result")
    assert page.locator("#assist-progress").is_hidden()

    # What went to the model: the words and the scripts, never the key.
    first, second = fake_model.received
    assert WORDS in first.text and "replica.key = entity.key" in first.text
    assert AI_KEY not in first.text and first.headers["Authorization"] == f"Bearer {AI_KEY}"
    assert "was never closed" in second.text

    assert page.input_value("#id_outgoing") == GOOD_OUT
    assert page.input_value("#id_outgoing") != before
    editor_text = page.locator('.cm-editor[data-editor-for="id_outgoing"] .cm-content')
    assert "replica.status = entity.status" in editor_text.inner_text()
    diff = page.locator("#assist-diff-outgoing")
    assert "-replica.key = entity.key" in diff.inner_text()
    assert page.locator("#assist-sent-back").is_visible()
    assert '"summary": "VPN drops' in page.locator("#assist-result #replica").inner_text()

    page.click("#save-rules")
    page.wait_for_selector(".message.success")
    row = page.locator('#rules-history tr[data-version="1"]')
    assert f"AI Assist: {WORDS}" in row.inner_text()
    page.click('#rules-history tr[data-version="1"] a')
    assert WORDS in page.locator("#version-assist").inner_text()


def test_a_draft_can_be_discarded(rules_page, fake_model):
    page = rules_page
    before = page.input_value("#id_incoming")
    fake_model.answer(draft(incoming="entity.summary = replica.summary\n"))
    ask(page, "Only the summary comes in.", "incoming")
    page.wait_for_selector("#assist-draft-result")
    assert page.input_value("#id_incoming") == "entity.summary = replica.summary\n"
    page.click("#assist-discard")
    assert page.input_value("#id_incoming") == before
    assert page.input_value('input[name="assist_prompt"]') == ""
    assert page.locator("#assist-draft-result").count() == 0


def test_a_draft_that_does_not_compile_is_marked_in_the_editor(rules_page, fake_model):
    page = rules_page
    fake_model.answer(draft(outgoing=BROKEN_OUT)).answer(draft(outgoing=BROKEN_OUT))
    ask(page)
    page.wait_for_selector("#assist-draft-result[data-compiles=false]")
    marked = page.locator('.cm-editor[data-editor-for="id_outgoing"] .cm-lintRange-error')
    marked.first.wait_for()
    assert marked.first.inner_text() == "replica.summary = (entity.summary"


def test_a_slow_model_is_given_up_on_and_the_scripts_stay(rules_page, fake_model):
    page = rules_page
    before = page.input_value("#id_outgoing")
    fake_model.slow(8, draft(outgoing=GOOD_OUT))
    ask(page)
    error = page.locator("#assist-error")
    error.wait_for(timeout=15_000)
    assert "did not answer within 3 seconds" in error.inner_text()
    assert page.input_value("#id_outgoing") == before
    assert page.locator("#assist-draft").is_enabled()


def test_a_refused_key_is_told(rules_page, fake_model):
    page = rules_page
    fake_model.fail(401, "Incorrect API key provided")
    ask(page)
    error = page.locator("#assist-error")
    error.wait_for()
    assert "refused the API key" in error.inner_text()

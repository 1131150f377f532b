"""Sync rules in a real browser: the script editor, a refused save keeps the text and marks
its line, a fixed one is a version, completion knows the sandbox's fields."""

import pytest

from tests.e2e.conftest import log_in
from tests.livenodes import start_node

pytestmark = pytest.mark.e2e

SETUP = """
from django.contrib.auth import get_user_model
from connections.models import Connection
from sync.services import save_rules
c = Connection.objects.create(name="Acme to Globex", mode="script", role="source",
                              local_short_name="acme", remote_short_name="globex")
save_rules(c, "replica.summary = entity.summary\\n", "entity.summary = replica.summary\\n",
           get_user_model().objects.get(username="admin"))
b = Connection.objects.create(name="Basic one", mode="basic", role="source",
                              local_short_name="acme", remote_short_name="initech")
print(c.pk)
print(b.pk)
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    node = start_node(tmp_path_factory.mktemp("rules"), "rules")
    yield node
    node.stop()


@pytest.fixture(scope="module")
def connections(node):
    script_id, basic_id = node.shell(SETUP).splitlines()[-2:]
    return script_id, basic_id


def open_rules(page, node, connection_id):
    log_in(page, node.url, node.username, node.password)
    page.goto(f"{node.url}/connections/{connection_id}/rules/")
    page.wait_for_selector("html[data-editor=ready]")


def editor(page, name):
    return page.locator(f'.cm-editor[data-editor-for="id_{name}"]')


def replace_script(page, name, text):
    """Select all in the editor and type the new text, as a person would (closing brackets
    and indentation are the editor's own help, so the text is put in as a paste)."""
    content = editor(page, name).locator(".cm-content")
    content.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def test_the_editor_replaces_the_textarea_and_highlights_python(node, connections, page):
    open_rules(page, node, connections[0])
    assert page.locator("#id_outgoing").is_hidden()
    assert editor(page, "outgoing").is_visible()
    assert editor(page, "outgoing").locator(".cm-lineNumbers").is_visible()
    replace_script(page, "outgoing", "# a comment\nif entity.summary:\n    replica.x = 'text'\n")
    colors = page.evaluate(
        """() => {
          const ed = document.querySelector('.cm-editor[data-editor-for="id_outgoing"]');
          const color = (text) => [...ed.querySelectorAll('.cm-line span')]
              .filter(s => s.textContent === text).map(s => getComputedStyle(s).color)[0];
          const plain = getComputedStyle(ed.querySelector('.cm-content')).color;
          return {keyword: color('if'), comment: color('# a comment'),
                  string: color("'text'"), plain};
        }"""
    )
    assert colors["keyword"] and colors["keyword"] != colors["plain"]
    assert colors["comment"] and colors["comment"] not in (colors["plain"], colors["keyword"])
    assert colors["string"] and colors["string"] != colors["plain"]
    # The textarea, still the form field, holds what the editor shows.
    assert page.input_value("#id_outgoing").startswith("# a comment\nif entity.summary:")


def test_completion_offers_the_fields_of_the_sandbox(node, connections, page):
    open_rules(page, node, connections[0])
    replace_script(page, "outgoing", "")
    page.keyboard.type("replica.summary = entity.su")
    options = page.locator(".cm-tooltip-autocomplete .cm-completionLabel")
    options.first.wait_for()
    assert "summary" in options.all_inner_texts()
    # CodeMirror ignores Enter for 75 ms after the list opens (so that a newline typed as it
    # appears stays a newline); a person takes longer than that to choose.
    page.wait_for_timeout(150)
    page.keyboard.press("Enter")
    assert page.input_value("#id_outgoing") == "replica.summary = entity.summary"
    # A reference's own fields, and the incoming script's helpers.
    page.keyboard.type("\nreplica.x = entity.team.")
    options.first.wait_for()
    assert sorted(options.all_inner_texts()) == ["id", "name"]
    page.keyboard.press("Escape")
    editor(page, "incoming").locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nmerge_c")
    options.first.wait_for()
    assert any(text.startswith("merge_comments") for text in options.all_inner_texts())


def test_a_refused_save_marks_the_line_in_the_editor_and_a_fixed_one_is_a_version(
    node, connections, page
):
    open_rules(page, node, connections[0])
    before = page.locator("#sync-rules").get_attribute("data-rules-version")
    broken = "replica.summary = entity.summary\nreplica.status = (entity.status\n"
    replace_script(page, "outgoing", broken)
    page.click("#save-rules")
    page.wait_for_selector("html[data-editor=ready]")
    error = page.locator("#outgoing-errors .problem")
    assert "Line 2" in error.inner_text()
    assert "never closed" in error.inner_text()
    assert page.input_value("#id_outgoing") == broken

    # The editor marks line 2: a marker in the gutter, the line's text underlined.
    marked = editor(page, "outgoing").locator(".cm-lintRange-error")
    assert marked.inner_text() == "replica.status = (entity.status"
    marker_top = editor(page, "outgoing").locator(".cm-lint-marker-error").bounding_box()["y"]
    line_two = editor(page, "outgoing").locator(".cm-line").nth(1).bounding_box()
    assert abs(marker_top - line_two["y"]) < line_two["height"]
    marked.hover()
    tooltip = page.locator(".cm-tooltip-lint")
    tooltip.wait_for()
    assert "never closed" in tooltip.inner_text()

    # Clicking the error below the box selects that line in the editor.
    error.click()
    selected = page.evaluate("() => window.getSelection().toString()")
    assert selected == "replica.status = (entity.status"

    fixed = "replica.summary = entity.summary\nreplica.status = entity.status\n"
    replace_script(page, "outgoing", fixed)
    page.fill("#id_note", "send the status too")
    page.click("#save-rules")
    page.wait_for_selector(".message.success")
    number = int(before) + 1
    assert f"version {number}" in page.locator(".message.success").inner_text()
    assert page.locator("#sync-rules").get_attribute("data-rules-version") == str(number)
    row = page.locator(f'#rules-history tr[data-version="{number}"]')
    assert row.inner_text().count("send the") == 1
    assert editor(page, "outgoing").locator(".cm-lint-marker-error").count() == 0


def test_a_runtime_error_of_a_test_run_is_marked_at_its_line(node, connections, page):
    open_rules(page, node, connections[0])
    replace_script(page, "outgoing", "replica.summary = entity.summary\nx = 1 / 0\n")
    page.click("#test-run")
    page.wait_for_selector("#test-run-result")
    page.wait_for_selector("html[data-editor=ready]")
    problem = page.locator("#test-run-outgoing .problem")
    assert "ZeroDivisionError" in problem.inner_text()
    marked = editor(page, "outgoing").locator(".cm-lintRange-error")
    assert marked.inner_text() == "x = 1 / 0"


def test_the_test_run_shows_what_the_typed_scripts_do(node, connections, page):
    open_rules(page, node, connections[0])
    replace_script(
        page, "outgoing", "replica.summary = entity.summary\nreplica.status = entity.status\n"
    )
    page.click("#test-run")
    replica = page.locator("#replica")
    replica.wait_for()
    text = replica.inner_text()
    assert '"summary": "VPN drops every few minutes when working from home"' in text
    assert '"status": "in_progress"' in text
    assert page.locator("#incoming-changes").is_visible()


def test_scripts_shown_read_only_are_highlighted_too(node, connections, page):
    script_id, basic_id = connections
    open_rules(page, node, basic_id)
    page.click("#basic-rules summary")
    shown = page.locator('.cm-readonly-script[data-editor-for="basic-outgoing"]')
    assert shown.is_visible()
    assert shown.locator(".cm-content").get_attribute("contenteditable") == "false"
    assert "replica.summary" in shown.inner_text()
    page.goto(f"{node.url}/connections/{script_id}/rules/versions/1/")
    page.wait_for_selector("html[data-editor=ready]")
    version = page.locator('.cm-readonly-script[data-editor-for="version-outgoing"]')
    assert "replica.summary = entity.summary" in version.inner_text()
    assert version.locator(".cm-lineNumbers").is_visible()

// The script editor of the sync rules page: CodeMirror 6 over the form's textareas.
//
// Without JavaScript the page is plain textareas and <pre> blocks; this module puts an
// editor beside each `textarea[data-editor=python]` (and hides the textarea, which stays
// the form field: every change is copied into it) and turns each
// `pre[data-editor=python]` into a read-only editor. Completion reads what a script can
// use from the JSON the page carries (#script-vocabulary, made from sync/vocabulary.py).
// Problems the page lists (`.problem[data-line][data-target]`) are marked in the editor of
// their script. `window.exalateEditor` lets the page's other scripts talk to the editors.
//
// This file holds what showing a script needs; editing (history, keys, completion,
// search, lint) is in editing.js, a chunk of its own loaded with import() (see
// loadEditing()): the page opens evaluating a quarter less code.
import { defaultHighlightStyle, indentUnit, StreamLanguage, syntaxHighlighting } from "@codemirror/language";
import { python as pythonMode } from "@codemirror/legacy-modes/mode/python";
import { Compartment, EditorState } from "@codemirror/state";
import { EditorView, lineNumbers } from "@codemirror/view";

// Only completion needs it: read when editing is turned on, not while the page opens.
let vocabularyRead = false;
let vocabularyValue = null;
function readVocabulary() {
  if (vocabularyRead) return vocabularyValue;
  vocabularyRead = true;
  const tag = document.getElementById("script-vocabulary");
  try {
    vocabularyValue = tag ? JSON.parse(tag.textContent) : null;
  } catch (error) {
    vocabularyValue = null;
  }
  return vocabularyValue;
}

const theme = EditorView.theme({
  "&": { border: "1px solid var(--line, #cfd6e4)", borderRadius: "6px", backgroundColor: "#fff", fontSize: ".9rem" },
  "&.cm-focused": { outline: "2px solid #9db7f5", outlineOffset: "1px" },
  // The font of the page's other code (app.css): fonts a Linux desktop does not have are
  // not looked for, and an editor looks like the textarea it stands in for.
  ".cm-scroller": { fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace', lineHeight: "1.45" },
  ".cm-content": { minHeight: "var(--editor-min-height, 6rem)" },
  ".cm-gutters": { backgroundColor: "#f4f6fa", borderRight: "1px solid #e3e7ef", color: "#7a8499" },
});

// Python by a stream tokenizer: far less work when a page opens than a full parser, and
// enough for highlighting, brackets and indentation.
const pythonStream = StreamLanguage.define(pythonMode);

// What showing a script needs. Editing (history, keys, completion, brackets, the marking
// of special characters...) is added when an editor is first used: a page opens with less
// work, and nobody can tell.
function displayExtensions() {
  return [
    lineNumbers(),
    syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
    pythonStream,
    indentUnit.of("    "),
    EditorState.tabSize.of(4),
    theme,
  ];
}

const editors = new Map(); // textarea id -> EditorView
const editing = new Compartment();
const marking = new Compartment(); // the lint gutter, once there is something to mark
const started = new WeakSet();
const marked = new Set(); // ids of the editors that have marks
let editingModule = null; // editing.js, once loaded
let editingLoad = null;

function loadEditing() {
  editingLoad ||= import("./editing.js").then((module) => (editingModule = module));
  return editingLoad;
}

// The first click, focus or programmatic change turns on editing (once per editor): at
// once when editing.js is loaded (the page loads it as soon as it has loaded itself),
// else as soon as it is.
function startEditing(view) {
  if (started.has(view)) return;
  started.add(view);
  const turnOn = (module) => {
    const options = { ...view.editingOptions, vocabulary: readVocabulary() };
    view.dispatch({ effects: editing.reconfigure(module.editingExtensions(options)) });
  };
  if (editingModule) turnOn(editingModule);
  else loadEditing().then(turnOn);
}

// Marks `problems` ({line, message, source}) in the editor of `id`, replacing its marks.
async function setProblems(id, problems) {
  const view = editors.get(id);
  if (!view) return;
  const lined = problems.filter((p) => p.line);
  if (!lined.length && !marked.has(id)) return; // nothing to mark, nothing to clear
  const { markProblems } = editingModule || (await loadEditing());
  markProblems(view, lined, marking);
  if (lined.length) marked.add(id);
  else marked.delete(id);
}

function selectLine(id, number) {
  const view = editors.get(id);
  if (!view) return false;
  startEditing(view);
  const doc = view.state.doc;
  const line = doc.line(Math.min(Math.max(number, 1), doc.lines));
  view.dispatch({ selection: { anchor: line.from, head: line.to }, scrollIntoView: true });
  view.focus();
  return true;
}

function setText(id, text) {
  const view = editors.get(id);
  if (!view) return false;
  startEditing(view); // so that the change can be undone (editing.js is loaded by then)
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
  return true;
}

// An editor for the textarea, not yet in the page (see start()).
function editorFor(area) {
  const readOnly = area.readOnly;
  const label = document.querySelector(`label[for="${area.id}"]`);
  const extensions = [
    ...displayExtensions(),
    EditorView.contentAttributes.of({ "aria-label": label ? label.textContent.trim() : area.name }),
    EditorState.readOnly.of(readOnly),
    EditorView.updateListener.of((update) => {
      if (!update.docChanged) return;
      // The textarea stays the form field: the page's own script sees an edit as input.
      area.value = update.state.doc.toString();
      area.dispatchEvent(new Event("input", { bubbles: true }));
    }),
    editing.of([]),
    marking.of([]),
  ];
  const view = new EditorView({ doc: area.value, extensions });
  view.editingOptions = { readOnly, direction: area.dataset.direction || "outgoing" };
  const rows = parseInt(area.getAttribute("rows") || "10", 10);
  view.dom.style.setProperty("--editor-min-height", `${rows * 1.45}em`);
  view.dom.dataset.editorFor = area.id;
  // Before the browser acts on the click or key: editing must be on by then.
  view.dom.addEventListener("pointerdown", () => startEditing(view), { capture: true });
  view.contentDOM.addEventListener("focus", () => startEditing(view));
  if (label) label.addEventListener("click", () => view.focus());
  return () => {
    area.parentNode.insertBefore(view.dom, area.nextSibling);
    area.hidden = true;
    area.dataset.editorReady = "true";
    editors.set(area.id, view);
  };
}

function readOnlyFor(pre) {
  const view = new EditorView({
    doc: pre.textContent.replace(/\n$/, ""),
    extensions: [...displayExtensions(), EditorState.readOnly.of(true), EditorView.editable.of(false)],
  });
  view.dom.classList.add("cm-readonly-script");
  view.dom.dataset.editorFor = pre.id || "";
  return () => {
    pre.parentNode.insertBefore(view.dom, pre.nextSibling);
    pre.hidden = true;
  };
}

// Problems listed on the page (a refused save, a failed test run, an AI draft), marked in
// their script; a script with none listed has its marks cleared. Done when it resolves.
function markListedProblems() {
  const byTarget = new Map([...editors.keys()].map((id) => [id, new Map()]));
  document.querySelectorAll(".problem[data-line][data-target]").forEach((item) => {
    const found = byTarget.get(item.dataset.target);
    if (!found) return;
    const problem = { line: parseInt(item.dataset.line, 10), message: item.dataset.message || item.textContent.trim() };
    found.set(`${problem.line}:${problem.message}`, problem); // listed twice, marked once
  });
  return Promise.all([...byTarget].map(([id, problems]) => setProblems(id, [...problems.values()])));
}

function start() {
  // Every editor is made first and then all are put in the page at once: the page is laid
  // out again once, not once per editor.
  const inserts = [
    ...[...document.querySelectorAll('textarea[data-editor="python"]')].map(editorFor),
    ...[...document.querySelectorAll('pre[data-editor="python"]')].map(readOnlyFor),
  ];
  inserts.forEach((insert) => insert());
  // Ready once the listed problems are marked too (loading editing.js first if any are).
  markListedProblems().then(() => {
    // For anyone timing the page (bench/editor_page.py): when the editors were ready.
    performance.mark("editor-ready");
    document.documentElement.dataset.editor = "ready";
    document.dispatchEvent(new CustomEvent("exalate:editor-ready"));
  });
  // Editing is loaded once the page has loaded, before anyone types: not while it opens.
  if (editors.size) {
    if (document.readyState === "complete") setTimeout(loadEditing);
    else window.addEventListener("load", () => setTimeout(loadEditing), { once: true });
  }
}

window.exalateEditor = { setProblems, selectLine, setText, has: (id) => editors.has(id), markListedProblems };

// The rules page puts this script after the scripts it edits, without `defer` and with
// data-start="now": the editors are made at once, before the page is first laid out and
// painted, so it is laid out and painted with them, not first with the textareas and then
// again (a layout shift, and the work of a frame, while the page loads). Elsewhere (in the
// head, or deferred) it starts once the document is parsed.
const script = document.currentScript;
if (document.readyState !== "loading" || (script && script.dataset.start === "now")) {
  start();
} else {
  document.addEventListener("DOMContentLoaded", start);
}

// The script editor of the sync rules page: CodeMirror 6 over the form's textareas.
//
// Without JavaScript the page is plain textareas and <pre> blocks; this bundle puts an
// editor beside each `textarea[data-editor=python]` (and hides the textarea, which stays
// the form field: every change is copied into it) and turns each
// `pre[data-editor=python]` into a read-only editor. Completion reads what a script can
// use from the JSON the page carries (#script-vocabulary, made from sync/vocabulary.py).
// Problems the page lists (`.problem[data-line][data-target]`) are marked in the editor of
// their script. `window.exalateEditor` lets the page's other scripts talk to the editors.
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { python as pythonMode } from "@codemirror/legacy-modes/mode/python";
import {
  bracketMatching,
  defaultHighlightStyle,
  indentOnInput,
  indentUnit,
  StreamLanguage,
  syntaxHighlighting,
} from "@codemirror/language";
import { diagnosticCount, lintGutter, lintKeymap, setDiagnostics } from "@codemirror/lint";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import { Compartment, EditorState } from "@codemirror/state";
import {
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from "@codemirror/view";

const KEYWORDS = [
  "and", "break", "continue", "def", "del", "elif", "else", "False", "for", "if", "in",
  "is", "lambda", "None", "not", "or", "pass", "return", "True", "while",
];

function readVocabulary() {
  const tag = document.getElementById("script-vocabulary");
  if (!tag) return null;
  try {
    return JSON.parse(tag.textContent);
  } catch (error) {
    return null;
  }
}

function fieldOption(field) {
  return { label: field.name, type: "property", detail: field.kind, info: field.doc };
}

// entity.<field>, replica.<field>, entity.service.<sub-field>, and the names a script of
// this direction finds set, the builtins and Python's keywords.
function completionSource(vocabulary, direction) {
  const names = (vocabulary.directions[direction] || []);
  const records = new Set(names.filter((n) => n.kind === "record").map((n) => n.name));
  const byName = new Map(vocabulary.fields.map((f) => [f.name, f]));
  const topLevel = [
    ...names.map((n) => ({
      label: n.name,
      type: n.kind === "helper" ? "function" : "variable",
      detail: n.signature ? n.signature.slice(n.name.length) : n.kind,
      info: n.doc,
      apply: n.kind === "helper" ? n.name + "(" : n.name,
    })),
    ...vocabulary.builtins.map((b) => ({ label: b, type: /^[A-Z]/.test(b) ? "class" : "function" })),
    ...KEYWORDS.map((k) => ({ label: k, type: "keyword" })),
  ];
  return (context) => {
    const dotted = context.matchBefore(/[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*\.\w*$/);
    if (dotted) {
      const parts = dotted.text.split(".");
      const typed = parts.pop();
      const from = dotted.to - typed.length;
      if (parts.length === 1 && records.has(parts[0])) {
        return { from, options: vocabulary.fields.map(fieldOption), validFor: /^\w*$/ };
      }
      if (parts.length === 2 && records.has(parts[0])) {
        const field = byName.get(parts[1]);
        if (field && field.fields && field.kind === "reference") {
          return { from, options: field.fields.map(fieldOption), validFor: /^\w*$/ };
        }
      }
      return null;
    }
    const word = context.matchBefore(/\w+$/);
    if (!word && !context.explicit) return null;
    return { from: word ? word.from : context.pos, options: topLevel, validFor: /^\w*$/ };
  };
}

const theme = EditorView.theme({
  "&": { border: "1px solid var(--line, #cfd6e4)", borderRadius: "6px", backgroundColor: "#fff", fontSize: ".9rem" },
  "&.cm-focused": { outline: "2px solid #9db7f5", outlineOffset: "1px" },
  ".cm-scroller": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", lineHeight: "1.45" },
  ".cm-content": { minHeight: "var(--editor-min-height, 6rem)" },
  ".cm-gutters": { backgroundColor: "#f4f6fa", borderRight: "1px solid #e3e7ef", color: "#7a8499" },
});

// Python by a stream tokenizer: far less work when a page opens than a full parser, and
// enough for highlighting, brackets and indentation.
const pythonStream = StreamLanguage.define(pythonMode);

// What showing a script needs. Editing (history, keys, completion, brackets...) is added
// when an editor is first used: a page opens with less work, and nobody can tell.
function displayExtensions() {
  return [
    lineNumbers(),
    highlightSpecialChars(),
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

function editingExtensions(vocabulary, direction) {
  const extensions = [
    history(),
    drawSelection(),
    indentOnInput(),
    closeBrackets(),
    bracketMatching(),
    highlightActiveLine(),
    highlightActiveLineGutter(),
    highlightSelectionMatches(),
    keymap.of([
      ...closeBracketsKeymap,
      ...defaultKeymap,
      ...searchKeymap,
      ...historyKeymap,
      ...completionKeymap,
      ...lintKeymap,
      indentWithTab,
    ]),
  ];
  if (vocabulary) {
    extensions.push(autocompletion({ override: [completionSource(vocabulary, direction)] }));
  }
  return extensions;
}

// The first click, focus or programmatic change turns on editing (once per editor).
function startEditing(view) {
  if (started.has(view)) return;
  started.add(view);
  view.dispatch({ effects: editing.reconfigure(view.startEditing()) });
}

function lineRange(doc, number) {
  const line = doc.line(Math.min(Math.max(number, 1), doc.lines));
  return { from: line.from, to: line.to };
}

function setProblems(id, problems) {
  const view = editors.get(id);
  if (!view) return;
  const doc = view.state.doc;
  const diagnostics = problems
    .filter((p) => p.line)
    .map((p) => ({ ...lineRange(doc, p.line), severity: "error", message: p.message, source: p.source || "" }));
  const effects = [];
  if (diagnostics.length && !marking.get(view.state).length) effects.push(marking.reconfigure(lintGutter()));
  view.dispatch(setDiagnostics(view.state, diagnostics), { effects });
}

function selectLine(id, number) {
  const view = editors.get(id);
  if (!view) return false;
  startEditing(view);
  const { from, to } = lineRange(view.state.doc, number);
  view.dispatch({ selection: { anchor: from, head: to }, scrollIntoView: true });
  view.focus();
  return true;
}

function setText(id, text) {
  const view = editors.get(id);
  if (!view) return false;
  startEditing(view); // so that the change can be undone
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
  return true;
}

// An editor for the textarea, not yet in the page (see start()).
function editorFor(area, vocabulary) {
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
  view.startEditing = () =>
    readOnly
      ? [keymap.of([...defaultKeymap, ...searchKeymap])]
      : editingExtensions(vocabulary, area.dataset.direction || "outgoing");
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
// their script; a script with none listed has its marks cleared.
function markListedProblems() {
  const byTarget = new Map([...editors.keys()].map((id) => [id, new Map()]));
  document.querySelectorAll(".problem[data-line][data-target]").forEach((item) => {
    const found = byTarget.get(item.dataset.target);
    if (!found) return;
    const problem = { line: parseInt(item.dataset.line, 10), message: item.dataset.message || item.textContent.trim() };
    found.set(`${problem.line}:${problem.message}`, problem); // listed twice, marked once
  });
  byTarget.forEach((problems, id) => {
    const view = editors.get(id);
    // Nothing listed and nothing marked: no transaction (it would cost a view update).
    if (problems.size === 0 && diagnosticCount(view.state) === 0) return;
    setProblems(id, [...problems.values()]);
  });
}

function start() {
  const vocabulary = readVocabulary();
  // Every editor is made first and then all are put in the page at once: the page is laid
  // out again once, not once per editor.
  const inserts = [
    ...[...document.querySelectorAll('textarea[data-editor="python"]')].map((area) => editorFor(area, vocabulary)),
    ...[...document.querySelectorAll('pre[data-editor="python"]')].map(readOnlyFor),
  ];
  inserts.forEach((insert) => insert());
  markListedProblems();
  // For anyone timing the page (bench/editor_page.py): when the editors were ready.
  performance.mark("editor-ready");
  document.documentElement.dataset.editor = "ready";
  document.dispatchEvent(new CustomEvent("exalate:editor-ready"));
}

window.exalateEditor = { setProblems, selectLine, setText, has: (id) => editors.has(id), markListedProblems };

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}

// What editing a script needs, beyond showing it: history, keys, brackets, search,
// completion, and the marks of problems (lint). editor.js loads this part with import()
// when an editor is first used, when there is a problem to mark, or once the page has
// loaded: the page opens without evaluating it, and it is there before anyone types.
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { bracketMatching, indentOnInput } from "@codemirror/language";
import { diagnosticCount, lintGutter, lintKeymap, setDiagnostics } from "@codemirror/lint";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import {
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
} from "@codemirror/view";

const KEYWORDS = [
  "and", "break", "continue", "def", "del", "elif", "else", "False", "for", "if", "in",
  "is", "lambda", "None", "not", "or", "pass", "return", "True", "while",
];

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

// The extensions an editor gets when first used: a read-only one only moves and searches.
export function editingExtensions({ readOnly, vocabulary, direction }) {
  if (readOnly) return [highlightSpecialChars(), keymap.of([...defaultKeymap, ...searchKeymap])];
  const extensions = [
    highlightSpecialChars(),
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

function lineRange(doc, number) {
  const line = doc.line(Math.min(Math.max(number, 1), doc.lines));
  return { from: line.from, to: line.to };
}

// Marks `problems` ({line, message, source}) in the view, replacing its earlier marks; the
// lint gutter goes in (through `marking`) with the first mark.
export function markProblems(view, problems, marking) {
  const doc = view.state.doc;
  const diagnostics = problems
    .filter((p) => p.line)
    .map((p) => ({ ...lineRange(doc, p.line), severity: "error", message: p.message, source: p.source || "" }));
  // Nothing to mark and nothing marked: no transaction (it would cost a view update).
  if (!diagnostics.length && diagnosticCount(view.state) === 0) return;
  const effects = [];
  if (diagnostics.length && !marking.get(view.state).length) effects.push(marking.reconfigure(lintGutter()));
  view.dispatch(setDiagnostics(view.state, diagnostics), { effects });
}

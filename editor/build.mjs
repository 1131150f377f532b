// Builds ../static/js/editor.bundle.js from src/editor.js (`npm run build`, `make editor`).
//
// Three changes to CodeMirror are made while bundling (see startupPatches): each is a plain
// text replacement, and the build fails if its text is not found (CodeMirror was updated:
// look again whether the patch is still needed).
import * as esbuild from "esbuild";

const startupPatches = [
  {
    file: "@codemirror/view/dist/index.js",
    // A new view's first guess at its visible area read window.innerWidth, which makes the
    // browser lay out the page there and then: the page is still being parsed (the editors
    // are made before the first layout, see src/editor.js), so that layout is thrown away
    // at once. The guess only matters for lines of thousands of characters and is replaced
    // by the view's first measure; screen.width is a fair guess and costs no layout.
    find: "this.pixelViewport = { left: 0, right: window.innerWidth, top: 0, bottom: 0 };",
    replace: "this.pixelViewport = { left: 0, right: window.screen.width || 1e4, top: 0, bottom: 0 };",
  },
  {
    file: "@codemirror/view/dist/index.js",
    // A new view read the document's selection (to know it later), and reading a selection
    // makes the browser lay out the page. A view whose DOM is not in the document yet (ours
    // are made first, then put in the page, see src/editor.js) cannot hold the selection:
    // its first measure reads it, once the page is laid out with the editors in it.
    find: "        this.listenForScroll();\n        this.readSelectionRange();\n    }",
    replace: "        this.listenForScroll();\n        if (this.dom.isConnected)\n            this.readSelectionRange();\n    }",
  },
  {
    file: "@codemirror/view/dist/index.js",
    // A new view asked for document.fonts.ready (to measure again once the fonts are in),
    // and asking makes the browser lay out the page: while it is still being parsed, and
    // again for each editor. Asked a moment later (once the script that makes the views has
    // put them in the page), the page is laid out once, with the editors, and the frame
    // that follows finds that layout done. The view still measures when the fonts are in.
    find: "        if ((_a = document.fonts) === null || _a === void 0 ? void 0 : _a.ready)\n            document.fonts.ready.then(() => {",
    replace:
      '        if ((_a = document.fonts) === null || _a === void 0 ? void 0 : "ready" in _a)\n            Promise.resolve().then(() => document.fonts.ready).then(() => {',
  },
];

const patchPlugin = {
  name: "startup-patches",
  setup(build) {
    build.onLoad({ filter: /node_modules[\\/]@codemirror[\\/].*\.js$/ }, async (args) => {
      const patches = startupPatches.filter((p) => args.path.replace(/\\/g, "/").endsWith(p.file));
      if (!patches.length) return undefined;
      const fs = await import("node:fs/promises");
      let text = await fs.readFile(args.path, "utf8");
      for (const patch of patches) {
        if (!text.includes(patch.find)) throw new Error(`${patch.file}: the text to patch is gone:\n${patch.find}`);
        text = text.replace(patch.find, patch.replace);
      }
      return { contents: text, loader: "js" };
    });
  },
};

await esbuild.build({
  entryPoints: ["src/editor.js"],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  legalComments: "none",
  outfile: "../static/js/editor.bundle.js",
  plugins: [patchPlugin],
});

// Copies the browser files we serve from npm packages into static/vendor/ (no CDN, no network).
// The copies are committed, so running the app never needs Node. axe-core goes to
// tests/browser/vendor/ instead: the accessibility test injects it, users are never served it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const files = [
  ["htmx.org", "dist/htmx.min.js", "htmx.min.js"],
  ["htmx.org", "LICENSE", "htmx.LICENSE"],
  ["chart.js", "dist/chart.umd.min.js", "chart.umd.min.js"],
  ["chart.js", "LICENSE.md", "chart.js.LICENSE"],
  ["swagger-ui-dist", "swagger-ui-bundle.js", "swagger-ui-bundle.js"],
  ["swagger-ui-dist", "swagger-ui.css", "swagger-ui.css"],
  ["swagger-ui-dist", "LICENSE", "swagger-ui.LICENSE"],
  ["redoc", "bundles/redoc.standalone.js", "redoc.standalone.js"],
  ["redoc", "LICENSE", "redoc.LICENSE"],
  ["axe-core", "axe.min.js", "axe.min.js", "tests/browser/vendor"],
  ["axe-core", "LICENSE", "axe-core.LICENSE", "tests/browser/vendor"],
];

// ReDoc's sidebar shows Redocly's logo from their CDN; we make no outside requests, so the
// bundle gets an empty inline image instead (the "API docs by Redocly" credit stays).
const patches = {
  "redoc.standalone.js": [
    ['src:"https://cdn.redoc.ly/redoc/logo-mini.svg"', `src:"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"`],
  ],
};

for (const [pkg, from, to, folder = "static/vendor"] of files) {
  const source = join(root, "node_modules", pkg, from);
  if (!existsSync(source)) {
    console.error(`missing ${pkg}/${from}: run npm ci first`);
    process.exit(1);
  }
  let text = readFileSync(source, "utf8");
  for (const [from_, to_] of patches[to] || []) {
    if (!text.includes(from_)) {
      console.error(`${to}: expected to patch ${from_} but it is gone: review scripts/vendor.mjs`);
      process.exit(1);
    }
    text = text.split(from_).join(to_);
  }
  mkdirSync(join(root, folder), { recursive: true });
  writeFileSync(join(root, folder, to), text);
  const version = JSON.parse(readFileSync(join(root, "node_modules", pkg, "package.json"))).version;
  console.log(`${folder}/${to} <- ${pkg}@${version}/${from}`);
}

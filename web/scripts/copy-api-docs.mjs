// Copies Swagger UI (npm's swagger-ui-dist) into dist/api-docs/ with a small initializer, so the
// API docs pages of chat-server (/api/docs) and chat-archive (/archive/docs) load no script from
// another origin and run under a 'self'-only Content-Security-Policy.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const src = dirname(require.resolve("swagger-ui-dist/package.json"));
const out = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "api-docs");
mkdirSync(out, { recursive: true });
for (const name of ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-bundle.js.LICENSE.txt", "LICENSE", "NOTICE"]) {
  copyFileSync(join(src, name), join(out, name));
}
// the page says which document to show: <body data-spec="/api/v1/openapi.json">
writeFileSync(
  join(out, "init.js"),
  'window.addEventListener("load", () => {\n' +
    '  // eslint-disable-next-line no-undef\n' +
    '  SwaggerUIBundle({ url: document.body.dataset.spec, dom_id: "#ui" });\n' +
    "});\n",
);

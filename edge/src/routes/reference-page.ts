/**
 * A small API reference page: it fetches /v1/openapi.json and lists every operation with its
 * parameters, bodies and responses, schemas shown as JSON with links to the named ones. Plain
 * DOM code inline, nothing loaded from anywhere else, so it works offline.
 */
export const REFERENCE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>revq API reference</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem 2rem; color: #1d232b; }
  h1 { margin-bottom: 0; } h2 { border-bottom: 1px solid #ccd; margin-top: 2.5rem; }
  details.op { border: 1px solid #d6dae0; border-radius: 6px; margin: .5rem 0; }
  details.op > summary { cursor: pointer; padding: .4rem .7rem; list-style: none; }
  details.op > div { padding: 0 1rem 1rem; }
  .method { display: inline-block; min-width: 4.2rem; font: bold 12px ui-monospace, monospace; text-transform: uppercase; }
  .get { color: #1a7f37; } .post { color: #0969da; } .delete { color: #cf222e; } .put, .patch { color: #9a6700; }
  code, pre { font-family: ui-monospace, monospace; font-size: 13px; }
  pre { background: #f6f8fa; padding: .6rem; border-radius: 4px; overflow-x: auto; }
  table { border-collapse: collapse; } td, th { text-align: left; padding: .15rem .8rem .15rem 0; vertical-align: top; }
  .muted { color: #59636e; }
</style>
</head>
<body>
<h1 id="title">revq API reference</h1>
<p class="muted">Generated from <a href="/v1/openapi.json">/v1/openapi.json</a>. Errors are RFC 9457 problem documents.</p>
<div id="doc">Loading…</div>
<script>
"use strict";
const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children) node.append(child);
  return node;
};
const refName = (ref) => ref.split("/").pop();
function schemaView(schema) {
  if (schema && schema.$ref) {
    const name = refName(schema.$ref);
    return el("p", {}, "Schema ", el("a", { href: "#schema-" + name }, name));
  }
  return el("pre", {}, JSON.stringify(schema, null, 2));
}
function contentView(content) {
  const box = el("div", {});
  for (const [type, media] of Object.entries(content || {})) {
    box.append(el("div", {}, el("code", {}, type)), schemaView(media.schema || {}));
  }
  return box;
}
function operationView(path, method, op) {
  const body = el("div", {});
  if (op.description) body.append(el("p", {}, op.description));
  if (op.security && op.security.length) {
    body.append(el("p", { class: "muted" }, "Auth: " + op.security.map((s) => Object.keys(s).join(" + ")).join(" or ")));
  }
  if (op.parameters && op.parameters.length) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "schema")));
    for (const p of op.parameters) {
      table.append(el("tr", {}, el("td", {}, el("code", {}, p.name + (p.required ? "" : "?"))), el("td", {}, p.in),
        el("td", {}, el("code", {}, JSON.stringify(p.schema || {})))));
    }
    body.append(el("h4", {}, "Parameters"), table);
  }
  if (op.requestBody) body.append(el("h4", {}, "Request body"), contentView(op.requestBody.content));
  body.append(el("h4", {}, "Responses"));
  for (const [status, res] of Object.entries(op.responses || {})) {
    body.append(el("div", {}, el("strong", {}, status + " "), res.description || ""), contentView(res.content));
  }
  return el("details", { class: "op" },
    el("summary", {}, el("span", { class: "method " + method }, method), el("code", {}, path), " ",
      el("span", { class: "muted" }, op.summary || "")),
    body);
}
async function main() {
  const doc = await (await fetch("/v1/openapi.json")).json();
  const root = document.getElementById("doc");
  root.textContent = "";
  document.getElementById("title").textContent = doc.info.title;
  root.append(el("p", {}, doc.info.description || ""));
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "Other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(path, method, op));
    }
  }
  for (const [tag, ops] of byTag) root.append(el("h2", {}, tag), ...ops);
  root.append(el("h2", {}, "Schemas"));
  for (const [name, schema] of Object.entries((doc.components && doc.components.schemas) || {})) {
    root.append(el("h3", { id: "schema-" + name }, name), schemaView(schema));
  }
}
main().catch((error) => { document.getElementById("doc").textContent = "Could not load the API document: " + error; });
</script>
</body>
</html>
`;

/**
 * A small API reference page: it fetches /v1/openapi.json and lists every operation with its
 * parameters, bodies, responses and examples, schemas shown as JSON with links to the named ones.
 * A search box filters the operations as you type; each has an anchor, #<operationId>. Plain DOM
 * code inline, nothing loaded from anywhere else, so it works offline.
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
  #search { box-sizing: border-box; width: 100%; font: inherit; padding: .4rem .6rem; border: 1px solid #ccd; border-radius: 4px; }
  nav a { margin-right: .8rem; }
  a.anchor { margin-left: .5rem; color: #59636e; text-decoration: none; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<h1 id="title">revq API reference</h1>
<p class="muted">Generated from <a href="/v1/openapi.json">/v1/openapi.json</a>. Errors are RFC 9457 problem documents; see <a href="#concepts">Concepts</a>.</p>
<nav id="nav"><a href="#concepts">Concepts</a></nav>
<p><input id="search" type="search" placeholder="Filter by path, summary, tag or operationId" aria-label="Filter operations" autocomplete="off"></p>
<p id="count" class="muted"></p>
<section id="concepts">
<h2>Concepts</h2>
<p>This page is the reference of every operation. What the document cannot say is in <code>docs/api.md</code> of the revq repository (the edge does not serve the repository's docs): keys and how to send them (<em>Keys</em>); errors, RFC 9457 problem documents (schema <a href="#schema-Problem">Problem</a>) with a stable <code>code</code> per failure (<em>Errors</em>); the size and count limits of bodies, images and jobs (<em>Limits</em>); the per-tenant rate limits and <code>Retry-After</code> (<em>Rate limits</em>); <code>Idempotency-Key</code>, paging with <code>cursor</code>, and the worker API and webhooks in prose. The token stream's bytes are described in <code>docs/token-stream.md</code>.</p>
</section>
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
const schemaLink = (ref, text) => el("a", { href: "#schema-" + refName(ref) }, text || refName(ref));
/** JSON as text, every "$ref" a link to the schema it names; arrays of plain values on one line. */
function jsonView(value) {
  const pre = el("pre", {});
  const write = (v, indent) => {
    const inner = indent + "  ";
    if (Array.isArray(v) && v.every((item) => item === null || typeof item !== "object")) {
      pre.append(JSON.stringify(v));
    } else if (Array.isArray(v)) {
      pre.append("[\\n");
      v.forEach((item, i) => {
        pre.append(inner);
        write(item, inner);
        pre.append(i < v.length - 1 ? ",\\n" : "\\n");
      });
      pre.append(indent + "]");
    } else if (v && typeof v === "object") {
      const entries = Object.entries(v);
      if (!entries.length) return pre.append("{}");
      pre.append("{\\n");
      entries.forEach(([key, item], i) => {
        pre.append(inner + JSON.stringify(key) + ": ");
        if (key === "$ref" && typeof item === "string") pre.append(schemaLink(item, JSON.stringify(item)));
        else write(item, inner);
        pre.append(i < entries.length - 1 ? ",\\n" : "\\n");
      });
      pre.append(indent + "}");
    } else {
      pre.append(JSON.stringify(v));
    }
  };
  write(value, "");
  return pre;
}
function schemaView(schema) {
  if (schema && schema.$ref) return el("p", {}, "Schema ", schemaLink(schema.$ref));
  return jsonView(schema);
}
function contentView(content) {
  const box = el("div", {});
  for (const [type, media] of Object.entries(content || {})) {
    box.append(el("div", {}, el("code", {}, type)), schemaView(media.schema || {}));
    if (media.example !== undefined) box.append(el("div", { class: "muted" }, "Example"), jsonView(media.example));
  }
  return box;
}
const exampleOf = (item) => (item.example !== undefined ? item.example : item.schema && item.schema.example);
function headersView(headers) {
  const table = el("table", {}, el("tr", {}, el("th", {}, "header"), el("th", {}, "example"), el("th", {}, "")));
  for (const [name, header] of Object.entries(headers)) {
    const example = exampleOf(header);
    table.append(el("tr", {}, el("td", {}, el("code", {}, name)), el("td", {}, el("code", {}, example === undefined ? "" : String(example))),
      el("td", {}, header.description || "")));
  }
  return table;
}
function operationView(path, method, op) {
  const id = op.operationId || method + path;
  const body = el("div", {});
  body.append(el("p", { class: "muted" }, "operationId ", el("code", {}, id)));
  if (op.description) body.append(el("p", {}, op.description));
  if (op.security && op.security.length) {
    body.append(el("p", { class: "muted" }, "Auth: " + op.security.map((s) => Object.keys(s).join(" + ")).join(" or ")));
  }
  if (op.parameters && op.parameters.length) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "schema"), el("th", {}, "example")));
    for (const p of op.parameters) {
      const example = exampleOf(p);
      table.append(el("tr", {}, el("td", {}, el("code", {}, p.name + (p.required ? "" : "?"))), el("td", {}, p.in),
        el("td", {}, el("code", {}, JSON.stringify(p.schema || {}))), el("td", {}, el("code", {}, example === undefined ? "" : String(example)))));
    }
    body.append(el("h4", {}, "Parameters"), table);
  }
  if (op.requestBody) body.append(el("h4", {}, "Request body"), contentView(op.requestBody.content));
  body.append(el("h4", {}, "Responses"));
  for (const [status, res] of Object.entries(op.responses || {})) {
    body.append(el("div", {}, el("strong", {}, status + " "), res.description || ""));
    if (res.headers) body.append(headersView(res.headers));
    body.append(contentView(res.content));
  }
  const tags = (op.tags || []).join(" ");
  const details = el("details", { class: "op", id, "data-search": [method, path, op.summary, tags, id].join(" ").toLowerCase() },
    el("summary", {}, el("span", { class: "method " + method }, method), el("code", {}, path), " ",
      el("span", { class: "muted" }, op.summary || ""), el("a", { class: "anchor", href: "#" + id, title: "Link to " + id }, "#")),
    body);
  return details;
}
/** Shows the operations whose path, summary, tag or operationId contain every word typed. */
function filter(query) {
  const words = query.toLowerCase().split(/\\s+/).filter(Boolean);
  let shown = 0;
  let total = 0;
  for (const section of document.querySelectorAll("section.tag")) {
    let any = false;
    for (const op of section.querySelectorAll("details.op")) {
      const match = words.every((word) => op.dataset.search.includes(word));
      op.hidden = !match;
      any = any || match;
      total += 1;
      if (match) shown += 1;
    }
    section.hidden = !any;
  }
  document.getElementById("count").textContent = words.length ? shown + " of " + total + " operations" : total + " operations";
}
/** Opens the operation the address names (#operationId), as a link to it should. */
function openTarget() {
  const target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (!target) return;
  if (target.tagName === "DETAILS") {
    target.hidden = false;
    target.closest("section").hidden = false;
    target.open = true;
  }
  target.scrollIntoView();
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
  const nav = document.getElementById("nav");
  for (const [tag, ops] of byTag) {
    root.append(el("section", { class: "tag" }, el("h2", { id: "tag-" + tag }, tag), ...ops));
    nav.append(el("a", { href: "#tag-" + tag }, tag));
  }
  nav.append(el("a", { href: "#schemas" }, "Schemas"));
  root.append(el("h2", { id: "schemas" }, "Schemas"));
  for (const [name, schema] of Object.entries((doc.components && doc.components.schemas) || {})) {
    root.append(el("h3", { id: "schema-" + name }, name), schemaView(schema));
  }
  const search = document.getElementById("search");
  search.addEventListener("input", () => filter(search.value));
  filter(search.value);
  window.addEventListener("hashchange", openTarget);
  openTarget();
}
main().catch((error) => { document.getElementById("doc").textContent = "Could not load the API document: " + error; });
</script>
</body>
</html>
`;

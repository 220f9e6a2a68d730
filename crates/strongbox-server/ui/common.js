// Shared by every page: API calls, where tokens are kept, and building the page
// from data without ever parsing it as HTML (text goes in through textContent).

// Tokens live in sessionStorage: they end with the tab, and are sent as a header,
// never as a cookie a cross-site request could carry.
export const session = {
  get: (name) => sessionStorage.getItem(`strongbox.${name}`),
  set: (name, value) => sessionStorage.setItem(`strongbox.${name}`, value),
  clear: () => {
    for (const key of Object.keys(sessionStorage)) {
      if (key.startsWith("strongbox.")) sessionStorage.removeItem(key);
    }
  },
};

// Calls the API. Resolves to {status, body} (body: parsed JSON, or text); never
// throws for an HTTP error, only when the server cannot be reached.
export async function api(method, path, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers["X-Bunker-Token"] = token;
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const text = await resp.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics, plain answers)
  }
  return { status: resp.status, body: parsed };
}

// The error message of an API answer.
export function why(reply) {
  const b = reply.body;
  if (b && typeof b === "object" && b.message) return b.message;
  return `the server answered ${reply.status}`;
}

// A path segment, escaped.
export const seg = (s) => encodeURIComponent(String(s));

// Builds an element: el("td", {class: "x"}, "text", child, …). Strings become text.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// Replaces the children of the element with id `id`.
export function fill(id, ...children) {
  const node = document.getElementById(id);
  node.replaceChildren(...children.flat());
  return node;
}

// Shows a status line (role=status, announced to screen readers).
export function say(id, text, kind = "") {
  const node = document.getElementById(id);
  node.textContent = text;
  node.className = `message ${kind}`;
}

// A table from rows of cells (strings or nodes); `head`: the column titles.
export function table(head, rows, empty = "Nothing here yet.") {
  if (!rows.length) return el("p", { class: "muted" }, empty);
  return el(
    "div",
    { class: "table" },
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c ?? ""))))),
    ),
  );
}

// Pretty JSON in a <pre>.
export const json = (value) => el("pre", {}, JSON.stringify(value, null, 2));

// A Unix time as a local date and time.
export function when(t) {
  const n = Number(t);
  if (!n) return "";
  return new Date(n * 1000).toLocaleString();
}

// Offers `value` as a JSON file download.
export function download(name, value) {
  const blob = new Blob([JSON.stringify(value, null, 2)], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// The changes from `before` to `after`, field by field (top-level keys), as rows.
export function diffRows(before, after) {
  const keys = new Set([...Object.keys(before || {}), ...Object.keys(after || {})]);
  const rows = [];
  for (const k of [...keys].sort()) {
    const a = JSON.stringify((before || {})[k]);
    const b = JSON.stringify((after || {})[k]);
    if (a !== b) {
      rows.push([k, a === undefined ? "" : el("del", {}, a), b === undefined ? "" : el("ins", {}, b)]);
    }
  }
  return rows;
}

// The admin console (root token): people, the DPO's request queue, legal bases and
// processing activities, the audit log with the chain's signed checkpoint, and the
// vault's status.
import { api, diffRows, el, fill, json, say, seg, session, table, when, why } from "./common.js";

const root = session.get("root");
const $ = (id) => document.getElementById(id);
const call = (method, path, body) => api(method, path, { token: root, body });
let auditOffset = 0;

function failed(id, r) {
  fill(id, el("p", { class: "message error" }, why(r)));
}

// ---- people ---------------------------------------------------------------------

async function find(event) {
  event.preventDefault();
  const mode = $("find-mode").value;
  const identity = $("find-identity").value.trim();
  if (!identity) return;
  const r = await call("GET", `/v1/user/${seg(mode)}/${seg(identity)}`);
  if (r.status !== 200) return failed("person", r);
  const token = r.body.token;
  const who = `token/${seg(token)}`;
  const [apps, agreements, audit] = await Promise.all([
    call("GET", `/v1/userapp/${who}`),
    call("GET", `/v1/agreements/${who}`),
    call("GET", `/v1/audit/list/${seg(token)}?offset=0&limit=10`),
  ]);
  const parts = [el("h3", {}, "Profile"), el("p", { class: "muted" }, `Token ${token}`), json(r.body.data)];
  parts.push(el("h3", {}, "App data"));
  if (apps.status === 200 && (apps.body.apps || []).length) {
    for (const app of apps.body.apps) {
      const d = await call("GET", `/v1/userapp/${who}/${seg(app)}`);
      if (d.status === 200) parts.push(el("h4", {}, app), json(d.body.data));
    }
  } else parts.push(el("p", { class: "muted" }, "None."));
  parts.push(el("h3", {}, "Consents"));
  parts.push(
    agreements.status === 200
      ? table(["Purpose", "Status", "Method", "When"], (agreements.body.rows || []).map((c) => [c.brief, c.status, c.agreementmethod || "", when(c.when)]), "None.")
      : el("p", { class: "message error" }, why(agreements)),
  );
  parts.push(el("h3", {}, "Audit"));
  parts.push(
    audit.status === 200
      ? table(["When", "Who", "What", "Result"], (audit.body.rows || []).map((e) => [when(e.when), e.identity, e.title || e.action, e.status]), "No events.")
      : el("p", { class: "message error" }, why(audit)),
  );
  fill("person", parts);
}

// ---- DPO requests ---------------------------------------------------------------

async function queue() {
  const r = await call("GET", "/v1/requests?offset=0&limit=100&status=open");
  if (r.status !== 200) return failed("queue-view", r);
  fill(
    "queue-view",
    table(
      ["Request", "Person", "Filed", ""],
      (r.body.rows || []).map((q) => [
        q.action || q.title || "",
        q.token || "",
        when(q.when || q.creationtime),
        el("button", { type: "button", class: "secondary", onclick: () => showRequest(q.rtoken) }, "Review"),
      ]),
      "No open requests.",
    ),
  );
}

async function showRequest(rtoken) {
  const r = await call("GET", `/v1/request/${seg(rtoken)}`);
  if (r.status !== 200) return failed("request-view", r);
  const b = r.body;
  const parts = [el("h3", {}, `Request ${rtoken}`)];
  if (b.app) parts.push(el("p", {}, "Application: ", b.app));
  if (b.change !== undefined && b.change !== null && typeof b.change === "object") {
    parts.push(table(["Field", "Now", "Requested"], diffRows(b.original, b.change), "No difference."));
  } else {
    parts.push(el("p", {}, "Current data:"), json(b.original));
  }
  parts.push(
    el("button", { type: "button", onclick: () => decide(rtoken, true) }, "Approve"),
    el("button", { type: "button", class: "danger", onclick: () => decide(rtoken, false) }, "Cancel the request"),
  );
  fill("request-view", parts);
}

async function decide(rtoken, approve) {
  const r = await call(approve ? "POST" : "DELETE", `/v1/request/${seg(rtoken)}`, approve ? {} : { reason: "cancelled by the DPO" });
  say("message", r.status === 200 ? (approve ? "Request approved." : "Request cancelled.") : why(r), r.status === 200 ? "ok" : "error");
  fill("request-view");
  await queue();
}

// ---- legal bases and processing activities --------------------------------------

async function bases() {
  const r = await call("GET", "/v1/lbasis");
  if (r.status !== 200) return failed("bases-view", r);
  const rows = r.body.rows || [];
  fill(
    "bases-view",
    table(
      ["Brief", "Description", "Basis", "Module", "Status", ""],
      rows.map((b) => [
        b.brief,
        b.shortdesc || "",
        b.basistype || "",
        b.module || "",
        b.status || "",
        el("button", { type: "button", class: "secondary", onclick: () => deleteBasis(b.brief) }, `Delete ${b.brief}`),
      ]),
    ),
  );
  fill("activity-basis", el("option", { value: "" }, "none"), rows.map((b) => el("option", { value: b.brief }, b.brief)));
}

async function saveBasis(event) {
  event.preventDefault();
  const brief = $("basis-brief").value.trim().toLowerCase();
  const r = await call("POST", `/v1/lbasis/${seg(brief)}`, {
    shortdesc: $("basis-short").value,
    fulldesc: $("basis-full").value,
    basistype: $("basis-type").value,
    module: $("basis-module").value,
    usercontrol: $("basis-usercontrol").checked,
    requiredflag: $("basis-required").checked,
  });
  say("message", r.status === 200 ? `Legal basis ${brief} saved.` : why(r), r.status === 200 ? "ok" : "error");
  await bases();
}

async function deleteBasis(brief) {
  if (!confirm(`Delete legal basis ${brief}? Consents to it are withdrawn.`)) return;
  const r = await call("DELETE", `/v1/lbasis/${seg(brief)}`);
  say("message", r.status === 200 ? `Legal basis ${brief} deleted.` : why(r), r.status === 200 ? "ok" : "error");
  await bases();
}

async function activities() {
  const r = await call("GET", "/v1/pactivity");
  if (r.status !== 200) return failed("activities-view", r);
  fill(
    "activities-view",
    table(["Activity", "Title", "Legal bases"], (r.body.rows || []).map((a) => [a.activity, a.title || "", (a.briefs || []).join(", ")])),
  );
}

async function saveActivity(event) {
  event.preventDefault();
  const name = $("activity-name").value.trim();
  let r = await call("POST", `/v1/pactivity/${seg(name)}`, { title: $("activity-title").value });
  const brief = $("activity-basis").value;
  if (r.status === 200 && brief) r = await call("POST", `/v1/pactivity/${seg(name)}/${seg(brief)}`);
  say("message", r.status === 200 ? `Activity ${name} saved.` : why(r), r.status === 200 ? "ok" : "error");
  await activities();
}

// ---- audit ------------------------------------------------------------------------

async function chain() {
  const [c, v] = await Promise.all([call("GET", "/v1/audit/checkpoint"), call("GET", "/v1/audit/verify")]);
  const parts = [];
  if (v.status === 200) {
    const r = v.body;
    parts.push(
      el(
        "p",
        {},
        el("span", { class: `badge ${r.intact ? "ok" : "bad"}` }, r.intact ? "chain intact" : "chain does not verify"),
        ` ${r.sealed} events chained, ${r.pending} waiting to be sealed; ${r.checkpoints} signed checkpoints verified, the newest covering event ${r.anchored}.`,
      ),
    );
    if (!r.intact) parts.push(el("ul", {}, r.findings.map((f) => el("li", {}, f))));
  } else parts.push(el("p", { class: "message error" }, `The chain could not be checked: ${why(v)}`));
  if (c.status === 200) {
    const k = c.body.checkpoint || {};
    parts.push(el("p", { class: "muted" }, `Newest checkpoint #${k.seq}, signed (${k.algorithm}) ${when(k.at)}. The check above trusts the key stored beside the chain; \`strongbox audit verify --public-key\` checks against one kept elsewhere.`));
  } else parts.push(el("p", { class: "muted" }, "No signed checkpoint yet."));
  fill("chain-view", parts);
}

async function sealNow() {
  const r = await call("POST", "/v1/audit/checkpoint");
  say("message", r.status === 200 ? "Checkpoint signed." : why(r), r.status === 200 ? "ok" : "error");
  await chain();
}

async function audit(more = false) {
  auditOffset = more ? auditOffset + 25 : 0;
  const r = await call("GET", `/v1/audit/admin?offset=${auditOffset}&limit=25`);
  if (r.status !== 200) return failed("audit-view", r);
  fill(
    "audit-view",
    el("p", { class: "muted" }, `${r.body.total} events; showing from ${auditOffset + 1}.`),
    table(["When", "Who", "What", "About", "Result"], (r.body.rows || []).map((e) => [when(e.when), e.identity, e.title || e.action, e.record || "", e.status])),
  );
}

// ---- vault ------------------------------------------------------------------------

const GAUGES = [
  ["strongbox_webhook_outbox_queued", "Webhooks waiting"],
  ["strongbox_webhook_given_up_total", "Webhooks given up"],
  ["strongbox_login_code_outbox_queued", "Login codes waiting"],
  ["strongbox_login_code_given_up_total", "Login codes given up"],
];

async function vault() {
  const [health, kek, index, metrics, conf] = await Promise.all([
    call("GET", "/v1/sys/health"),
    call("GET", "/v1/sys/rotate/kek"),
    call("GET", "/v1/sys/rotate/index"),
    call("GET", "/v1/metrics"),
    call("GET", "/v1/sys/configuration"),
  ]);
  const rows = [];
  rows.push(["State", health.status === 200 ? el("span", { class: "badge ok" }, "unsealed, database answering") : el("span", { class: "badge bad" }, why(health))]);
  if (kek.status === 200) {
    const k = kek.body;
    rows.push(["Key-encryption keys", `current v${k.current}, versions ${k.versions.join(", ")}; ${k.remaining} of ${k.total} keys still to re-wrap`]);
  }
  if (index.status === 200) {
    const i = index.body;
    rows.push(["Blind-index keys", `current v${i.current ?? "?"}; ${i.remaining ?? 0} of ${i.total ?? 0} people still to backfill`]);
  }
  if (metrics.status === 200 && typeof metrics.body === "string") {
    for (const [name, label] of GAUGES) {
      const line = metrics.body.split("\n").find((l) => l.startsWith(`${name} `));
      if (line) rows.push([label, line.split(" ")[1]]);
    }
  }
  if (conf.status === 200) {
    const p = (conf.body.configuration || {}).Policy || {};
    rows.push(["Retention", `users ${p.MaxUserRetentionPeriod ?? "?"}, sessions ${p.MaxSessionRetentionPeriod ?? "?"}, shared records ${p.MaxShareableRecordRetentionPeriod ?? "?"}`]);
  }
  fill("vault-view", table(["", ""], rows));
}

async function logout() {
  session.clear();
  location.assign("/");
}

async function start() {
  if (!root) {
    location.assign("/#admin");
    return;
  }
  $("logout").addEventListener("click", logout);
  $("find-form").addEventListener("submit", find);
  $("basis-form").addEventListener("submit", saveBasis);
  $("activity-form").addEventListener("submit", saveActivity);
  $("seal-now").addEventListener("click", sealNow);
  $("audit-more").addEventListener("click", () => audit(true));
  const check = await call("GET", "/v1/userapps");
  if (check.status === 401 || check.status === 403) {
    session.clear();
    location.assign("/#admin");
    return;
  }
  await Promise.all([queue(), bases(), activities(), chain(), audit(), vault()]);
}

start();

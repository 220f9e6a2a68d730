// The privacy portal: a data subject's own data, consents, requests and audit
// trail, with their rights (export, change, erasure), through their access token.
import { api, download, el, fill, json, say, seg, session, table, when, why } from "./common.js";

const xtoken = session.get("xtoken");
const me = session.get("token");
const $ = (id) => document.getElementById(id);
const call = (method, path, body) => api(method, path, { token: xtoken, body });
const user = `token/${seg(me || "")}`;

// Access ended (token expired, revoked, or never there): back to the login page.
function checkAccess(r) {
  if (r.status === 401 || (r.status === 403 && /expired|token/.test(why(r)))) {
    session.clear();
    location.assign("/");
    return false;
  }
  return true;
}

async function profile() {
  const r = await call("GET", `/v1/user/${user}`);
  if (!checkAccess(r)) return null;
  if (r.status !== 200) {
    fill("profile-view", el("p", { class: "message error" }, why(r)));
    return null;
  }
  fill("profile-view", json(r.body.data));
  $("profile-edit").value = JSON.stringify(r.body.data, null, 2);
  return r.body.data;
}

async function apps() {
  const r = await call("GET", `/v1/userapp/${user}`);
  const out = {};
  if (r.status !== 200) {
    fill("apps-view", el("p", { class: "message error" }, why(r)));
    return out;
  }
  const parts = [];
  for (const app of r.body.apps || []) {
    const d = await call("GET", `/v1/userapp/${user}/${seg(app)}`);
    if (d.status === 200) {
      out[app] = d.body.data;
      parts.push(el("h3", {}, app), json(d.body.data));
    }
  }
  fill("apps-view", parts.length ? parts : el("p", { class: "muted" }, "No application keeps data about you here."));
  return out;
}

// The person's agreements, and the other active legal bases they may agree to.
async function consents() {
  const [r, bases] = await Promise.all([call("GET", `/v1/agreements/${user}`), call("GET", "/v1/lbasis")]);
  if (r.status !== 200) {
    fill("consents-view", el("p", { class: "message error" }, why(r)));
    return [];
  }
  const rows = r.body.rows || [];
  const offered = bases.status === 200 ? bases.body.rows || [] : [];
  const mine = new Set(rows.map((c) => c.brief));
  const described = (brief) => (offered.find((b) => b.brief === brief) || {}).shortdesc || "";
  const lines = [
    ...rows.map((c) => [
      c.brief,
      described(c.brief),
      el("span", { class: `badge ${c.status === "yes" ? "ok" : "bad"}` }, c.status),
      c.agreementmethod || "",
      when(c.starttime || c.when),
      c.status === "yes"
        ? el("button", { type: "button", class: "secondary", onclick: () => consent(c.brief, false) }, `Withdraw ${c.brief}`)
        : el("button", { type: "button", class: "secondary", onclick: () => consent(c.brief, true) }, `Give ${c.brief}`),
    ]),
    ...offered
      .filter((b) => !mine.has(b.brief))
      .map((b) => [
        b.brief,
        b.shortdesc || "",
        el("span", { class: "badge" }, "not given"),
        "",
        "",
        el("button", { type: "button", class: "secondary", onclick: () => consent(b.brief, true) }, `Give ${b.brief}`),
      ]),
  ];
  fill("consents-view", table(["Purpose", "What for", "Status", "Given by", "Since", ""], lines, "There is nothing to consent to."));
  return rows;
}

async function consent(brief, give) {
  const path = `/v1/agreement/${seg(brief)}/${user}`;
  const r = give ? await call("POST", path, { agreementmethod: "portal" }) : await call("DELETE", path);
  if (r.status === 200) {
    const request = r.body && r.body.result === "request-created";
    say("message", request ? "Your request was sent for approval." : give ? "Consent given." : "Consent withdrawn.", "ok");
  } else say("message", why(r), "error");
  await Promise.all([consents(), requests()]);
}

async function requests() {
  const r = await call("GET", `/v1/requests/${user}?offset=0&limit=100`);
  if (r.status !== 200) {
    fill("requests-view", el("p", { class: "message error" }, why(r)));
    return [];
  }
  const rows = r.body.rows || [];
  fill(
    "requests-view",
    table(
      ["Request", "Status", "Filed", ""],
      rows.map((q) => [
        q.action || q.title || "",
        q.status,
        when(q.when || q.creationtime),
        q.status === "open"
          ? el("button", { type: "button", class: "secondary", onclick: () => cancel(q.rtoken) }, "Cancel")
          : "",
      ]),
      "You have no requests.",
    ),
  );
  return rows;
}

async function cancel(rtoken) {
  const r = await call("DELETE", `/v1/request/${seg(rtoken)}`);
  say("message", r.status === 200 ? "Request cancelled." : why(r), r.status === 200 ? "ok" : "error");
  await requests();
}

async function access() {
  const r = await call("GET", `/v1/audit/list/${seg(me)}?offset=0&limit=100`);
  if (r.status !== 200) {
    fill("access-view", el("p", { class: "message error" }, why(r)));
    return [];
  }
  const rows = r.body.rows || [];
  fill(
    "access-view",
    table(
      ["When", "Who", "What", "Result"],
      rows.map((e) => [when(e.when), e.identity, e.title || e.action, e.status]),
      "No access recorded.",
    ),
  );
  return rows;
}

async function saveProfile() {
  let value;
  try {
    value = JSON.parse($("profile-edit").value);
  } catch {
    return say("message", "That is not valid JSON.", "error");
  }
  const r = await call("PUT", `/v1/user/${user}`, value);
  if (r.status !== 200) return say("message", why(r), "error");
  const request = r.body.result === "request-created" || r.body.result === "request-exists";
  say("message", request ? "Your change was sent for approval." : "Your profile was changed.", "ok");
  await Promise.all([profile(), requests()]);
}

async function report() {
  const r = await call("GET", `/v1/audit/report/${seg(me)}`);
  if (r.status !== 200) return say("message", why(r), "error");
  download("access-report.json", r.body.report);
}

async function exportAll() {
  say("message", "Collecting your data…");
  const [p, a, c, q, e] = await Promise.all([profile(), apps(), consents(), requests(), access()]);
  download("my-data.json", { token: me, exported: new Date().toISOString(), profile: p, apps: a, consents: c, requests: q, audit: e });
  say("message", "Your data was downloaded.", "ok");
}

async function forget() {
  if (!confirm("Erase your profile and the data kept with it? This cannot be undone.")) return;
  const r = await call("DELETE", `/v1/user/${user}`);
  if (r.status !== 200) return say("message", why(r), "error");
  if (r.body.result === "done") {
    session.clear();
    document.querySelector("main").replaceChildren(el("section", {}, el("h2", {}, "Your data was erased"), el("p", {}, "You can close this tab.")));
    return;
  }
  say("message", "Your erasure request was sent for approval.", "ok");
  await requests();
}

async function logout() {
  await call("DELETE", `/v1/xtoken/${seg(xtoken)}`);
  session.clear();
  location.assign("/");
}

async function start() {
  if (!xtoken || !me) {
    location.assign("/");
    return;
  }
  $("logout").addEventListener("click", logout);
  $("profile-save").addEventListener("click", saveProfile);
  $("report").addEventListener("click", report);
  $("export").addEventListener("click", exportAll);
  $("forget").addEventListener("click", forget);
  if ((await profile()) === null) return;
  await Promise.all([apps(), consents(), requests(), access()]);
}

start();

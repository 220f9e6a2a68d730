// The shared-record viewer: what `/v1/get/{record}` returns for a partner holding a
// shared-record link (`/site/shared.html#<record id>`; the id is the capability).
import { api, el, fill, json, say, seg, why } from "./common.js";

async function start() {
  say("message", "");
  fill("record-view");
  let id = "";
  try {
    id = decodeURIComponent(location.hash.slice(1));
  } catch {
    // a malformed %-escape: not an id
  }
  if (!/^[0-9a-fA-F-]{36}$/.test(id)) return say("message", "This link holds no shared record id.", "error");
  const r = await api("GET", `/v1/get/${seg(id)}`);
  if (r.status !== 200) {
    return say("message", r.status === 404 ? "This record does not exist or has expired." : why(r), "error");
  }
  const parts = [];
  if (r.body.app) parts.push(el("p", {}, "Application: ", el("strong", {}, r.body.app)));
  parts.push(json(r.body.data));
  fill("record-view", parts);
}

window.addEventListener("hashchange", start);
start();

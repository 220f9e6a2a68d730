// The login page: Databunker's flow (prelogin with a captcha, then the code), with
// the consents collected here and recorded by the server only once the code is
// right; the admin token and shared-record ids go to their own pages.
import { api, el, fill, say, seg, session, why } from "./common.js";

const $ = (id) => document.getElementById(id);
let mode = "email";
let settings = { captcha: true, consents: [] };
let captchaToken = "";
let sentTo = "";
let agreed = [];

function select(next) {
  mode = next;
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.mode === next));
  }
  const person = next === "email" || next === "phone";
  $("identify").hidden = !person;
  $("verify").hidden = true;
  $("admin").hidden = next !== "admin";
  $("record").hidden = next !== "record";
  say("message", "");
  if (person) {
    const input = $("identity");
    input.type = next === "email" ? "email" : "tel";
    input.autocomplete = next === "email" ? "email" : "tel";
    $("identity-label").textContent = next === "email" ? "Email address" : "Phone number";
    showConsents();
  }
}

async function newCaptcha() {
  if (!settings.captcha) return;
  const r = await api("GET", "/v1/captcha");
  if (r.status !== 200) {
    say("message", `No captcha: ${why(r)}`, "error");
    return;
  }
  captchaToken = r.body.captcha;
  $("captcha-img").src = r.body.image;
  $("captcha").value = "";
}

// The legal bases of module `login` for this mode (the email one is not asked of a
// phone login, and the other way round).
function showConsents() {
  const other = mode === "email" ? "sms" : "email";
  const rows = settings.consents.filter((c) => !String(c.brief).includes(`-${other}-`));
  $("consents").hidden = rows.length === 0;
  fill(
    "consent-list",
    rows.map((c) =>
      el(
        "label",
        { class: "check" },
        el("input", { type: "checkbox", name: "consent", value: c.brief, "data-required": c.requiredflag ? "1" : false }),
        el("span", {}, c.shortdesc || c.brief, c.fulldesc ? el("br") : null, c.fulldesc ? el("small", { class: "muted" }, c.fulldesc) : null),
      ),
    ),
  );
}

async function identify(event) {
  event.preventDefault();
  const identity = $("identity").value.trim();
  if (!identity) return say("message", mode === "email" ? "Enter your email address." : "Enter your phone number.", "error");
  const boxes = [...document.querySelectorAll("input[name=consent]")];
  const missing = boxes.find((b) => b.dataset.required && !b.checked);
  if (missing) {
    const basis = settings.consents.find((c) => c.brief === missing.value);
    return say("message", basis?.requiredmsg || "This consent is required.", "error");
  }
  agreed = boxes.filter((b) => b.checked).map((b) => b.value);
  const typed = settings.captcha ? $("captcha").value.trim() : "0";
  if (settings.captcha && !/^[0-9]{6}$/.test(typed)) return say("message", "Type the six digits of the image.", "error");
  say("message", "Sending…");
  const r = await api("GET", `/v1/prelogin/${mode}/${seg(identity)}/${seg(typed)}/${seg(captchaToken || "0")}`);
  if (r.status === 200) {
    sentTo = identity;
    $("identify").hidden = true;
    $("verify").hidden = false;
    $("sent-to").textContent = `If ${identity} is known to us, a code is on its way. It works once, within 5 minutes.`;
    say("message", "");
    $("code").focus();
    return;
  }
  say("message", r.status === 400 && why(r) === "captcha-error" ? "The digits did not match. Try the new image." : why(r), "error");
  await newCaptcha();
}

async function verify(event) {
  event.preventDefault();
  const code = $("code").value.trim();
  if (!/^[0-9]{6}$/.test(code)) return say("message", "The code has six digits.", "error");
  const consent = agreed.length ? `?consent=${agreed.map(seg).join(",")}` : "";
  const r = await api("GET", `/v1/login/${mode}/${seg(sentTo)}/${seg(code)}${consent}`);
  if (r.status === 200) {
    session.clear();
    session.set("xtoken", r.body.xtoken);
    session.set("token", r.body.token);
    location.assign("/site/portal.html");
    return;
  }
  say("message", r.status === 403 ? "That code did not work. Check it, or start over for a new one." : why(r), "error");
}

async function admin(event) {
  event.preventDefault();
  const token = $("admin-token").value.trim();
  // Listing the application names is a root-only call: it checks the token.
  const r = await api("GET", "/v1/userapps", { token });
  if (r.status !== 200) return say("message", r.status === 403 || r.status === 401 ? "That token is not an admin token." : why(r), "error");
  session.clear();
  session.set("root", token);
  location.assign("/site/admin.html");
}

function record(event) {
  event.preventDefault();
  const raw = $("record-id").value.trim();
  const id = raw.split(/[/#]/).filter(Boolean).pop() || "";
  if (!/^[0-9a-fA-F-]{36}$/.test(id)) return say("message", "That is not a shared record id.", "error");
  location.assign(`/site/shared.html#${id}`);
}

async function start() {
  for (const tab of document.querySelectorAll("[role=tab]")) tab.addEventListener("click", () => select(tab.dataset.mode));
  $("identify").addEventListener("submit", identify);
  $("verify").addEventListener("submit", verify);
  $("admin").addEventListener("submit", admin);
  $("record").addEventListener("submit", record);
  $("captcha-new").addEventListener("click", newCaptcha);
  $("start-over").addEventListener("click", () => {
    select(mode);
    newCaptcha();
  });
  const r = await api("GET", "/v1/sys/loginsettings");
  if (r.status === 200) settings = r.body;
  else say("message", r.status === 503 ? "The vault is sealed: sign-in is not possible yet." : why(r), "error");
  $("captcha-box").hidden = !settings.captcha;
  select(location.hash === "#admin" ? "admin" : "email");
  await newCaptcha();
}

start();

#!/usr/bin/env python3
"""The web pages in a real browser (Playwright driving Debian's chromium), against a
running vault. Run by the Rust suite (tests/it/ui.rs), which starts the vault and a
mail sink and passes:

    ui_test.py --base URL --root TOKEN --mail FILE [--screenshots DIR]
    ui_test.py --base URL --root TOKEN --demo-log FILE

Without --captcha, the whole journey: a data subject signs in by email (code read
from the mail sink, consent given on the login page), uses the privacy portal
(profile change as a DPO request, consents, export, audit trail, sign-out); the DPO
finds them in the admin console and approves the change; a partner opens a shared
record. With --demo-log (a `strongbox demo`, whose prelogin checks a captcha): the
newcomer's path, signing in as the demo's person by reading the captcha image and
the code the demo prints; a wrong captcha answer is refused with a new image first. Every page must load without a console
error or a Content-Security-Policy violation, and nothing may go to localStorage.
Exits non-zero with a message at the first failure.
"""
import argparse
import json
import os
import re
import sys
import time
import urllib.request

from playwright.sync_api import expect, sync_playwright

EMAIL = "ann@example.com"


def api(base, method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if token:
        req.add_header("X-Bunker-Token", token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def wait_for_code(mail_file, count, within=20):
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            lines = open(mail_file, encoding="utf-8").read().splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= count:
            text = json.loads(lines[count - 1])["data"]
            m = re.search(r"access code is (\d{6})", text)
            check(m, f"no code in the mail: {text!r}")
            return m.group(1)
        time.sleep(0.1)
    raise AssertionError(f"mail {count} did not arrive")


class Watch:
    """Collects console errors, page errors, CSP violations and requests to any
    other origin than the vault's."""

    def __init__(self, page, base):
        self.problems = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

        def request(r):
            if not (r.url.startswith(base + "/") or r.url.startswith("blob:") or r.url.startswith("data:")):
                self.problems.append(f"request to another origin: {r.url}")

        page.on("request", request)

    def clean(self, where):
        # A failed API call the page handles (404 of a missing record) shows as a
        # console error of the network layer; those are named by their status.
        bad = [p for p in self.problems if "the server responded with a status" not in p]
        check(not bad, f"{where}: {bad}")


def labelled(page, where):
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => e.type !== 'hidden' && e.offsetParent !== null && !(e.labels && e.labels.length))
            .map(e => e.id || e.name)"""
    )
    check(not unlabelled, f"{where}: fields without a label: {unlabelled}")


def shot(page, args, name, full=True):
    if args.screenshots:
        os.makedirs(args.screenshots, exist_ok=True)
        page.screenshot(path=os.path.join(args.screenshots, name), full_page=full)


def journey(browser, args):
    base, root = args.base, args.root
    status, created = api(base, "POST", "/v1/user", root, {"email": EMAIL, "name": "Ann", "city": "Leeds"})
    check(status == 200, f"create user: {created}")
    token = created["token"]
    api(base, "POST", f"/v1/userapp/token/{token}/shop", root, {"plan": "gold"})

    ctx = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    page = ctx.new_page()
    watch = Watch(page, base)
    page.on("dialog", lambda d: d.accept())

    # --- the login page
    resp = page.goto(base + "/")
    csp = resp.headers.get("content-security-policy", "")
    check("script-src 'self'" in csp and "unsafe-inline" not in csp, f"CSP: {csp!r}")
    expect(page.locator("#identity")).to_have_attribute("type", "email")
    expect(page.locator("#captcha-box")).to_be_hidden()
    labelled(page, "login")
    required = page.locator("input[name=consent][value=core-send-email-on-login]")
    expect(required).to_be_visible()
    shot(page, args, "login.png")
    page.fill("#identity", EMAIL)
    page.click("#identify button[type=submit]")
    expect(page.locator("#message")).to_contain_text("required")
    required.check()
    page.click("#identify button[type=submit]")
    expect(page.locator("#verify")).to_be_visible()
    expect(page.locator("#code")).to_have_attribute("autocomplete", "one-time-code")
    page.fill("#code", "000000")
    page.click("#verify button[type=submit]")
    expect(page.locator("#message")).to_contain_text("did not work")
    page.fill("#code", wait_for_code(args.mail, 1))
    page.click("#verify button[type=submit]")

    # --- the privacy portal
    page.wait_for_url("**/site/portal.html")
    expect(page.locator("#profile-view")).to_contain_text('"city": "Leeds"')
    expect(page.locator("#apps-view")).to_contain_text('"plan": "gold"')
    consent_row = page.locator("#consents-view tr", has_text="core-send-email-on-login")
    # Purpose, what for, status, given by, since: recorded at the verified login.
    expect(consent_row.locator("td").nth(2)).to_have_text("yes")
    expect(consent_row.locator("td").nth(3)).to_have_text("login")
    # Another active legal basis, never given: offered.
    sms_row = page.locator("#consents-view tr", has_text="core-send-sms-on-login")
    expect(sms_row.locator("td").nth(2)).to_have_text("not given")
    expect(page.locator("#access-view")).to_contain_text("user login by email")
    labelled(page, "portal")
    check(page.evaluate("localStorage.length") == 0, "something went to localStorage")
    check(page.evaluate("sessionStorage.getItem('strongbox.xtoken')"), "no token in sessionStorage")
    shot(page, args, "portal.png")

    # A profile change goes to the DPO (self-service is off by default).
    edited = json.loads(page.input_value("#profile-edit"))
    edited["city"] = "York"
    page.click("#profile summary")
    page.fill("#profile-edit", json.dumps(edited))
    page.click("#profile-save")
    expect(page.locator("#message")).to_contain_text("sent for approval")
    expect(page.locator("#requests-view")).to_contain_text("open")

    # Withdraw the consent, then give it again.
    page.click("text=Withdraw core-send-email-on-login")
    expect(consent_row.locator("td").nth(2)).to_have_text("no")
    page.click("text=Give core-send-email-on-login")
    expect(consent_row.locator("td").nth(2)).to_have_text("yes")
    expect(consent_row.locator("td").nth(3)).to_have_text("portal")
    page.click("text=Give core-send-sms-on-login")
    expect(sms_row.locator("td").nth(2)).to_have_text("yes")

    # Everything as JSON.
    with page.expect_download() as dl:
        page.click("#export")
    exported = json.load(open(dl.value.path(), encoding="utf-8"))
    check(exported["profile"]["name"] == "Ann", f"export: {exported}")
    check(exported["apps"]["shop"]["plan"] == "gold", f"export apps: {exported}")
    check(any(e.get("title", "").startswith("user login") for e in exported["audit"]), "export audit")
    with page.expect_download() as dl:
        page.click("#report")
    report = json.load(open(dl.value.path(), encoding="utf-8"))
    check(isinstance(report, dict) and report, f"the access report is empty: {report}")
    xtoken = page.evaluate("sessionStorage.getItem('strongbox.xtoken')")
    # Forget me: with self-service erasure off (the default), a request for the DPO.
    page.click("#forget")
    expect(page.locator("#message")).to_contain_text("erasure request was sent for approval")
    expect(page.locator("#requests-view tr", has_text="forget-me")).to_contain_text("open")
    watch.clean("portal")

    # Sign-out revokes the token.
    page.click("#logout")
    page.wait_for_url(base + "/")
    check(page.evaluate("sessionStorage.length") == 0, "sessionStorage kept after sign-out")
    status, _ = api(base, "GET", f"/v1/user/token/{token}", xtoken)
    check(status in (401, 403), f"the token still works after sign-out: {status}")
    # Coming back without a token goes to the login page.
    page.goto(base + "/site/portal.html")
    page.wait_for_url(base + "/")

    # --- a shared record
    status, shared = api(base, "POST", f"/v1/sharedrecord/token/{token}", root, {"fields": "name,city", "expiration": "1h"})
    check(status == 200, f"share: {shared}")
    page.click("#tab-record")
    page.fill("#record-id", f"{base}/v1/get/{shared['record']}")
    page.click("#record button[type=submit]")
    page.wait_for_url("**/site/shared.html#*")
    expect(page.locator("#record-view")).to_contain_text('"city": "Leeds"')
    shot(page, args, "shared.png")
    page.goto(base + "/site/shared.html#00000000-0000-4000-8000-000000000000")
    expect(page.locator("#message")).to_contain_text("does not exist")
    watch.clean("shared")
    page.goto(base + "/")

    # --- the admin console
    page.click("#tab-admin")
    page.fill("#admin-token", "not-the-token")
    page.click("#admin button[type=submit]")
    expect(page.locator("#message")).to_contain_text("not an admin token")
    page.fill("#admin-token", root)
    page.click("#admin button[type=submit]")
    page.wait_for_url("**/site/admin.html")
    expect(page.locator("#vault-view")).to_contain_text("unsealed")
    expect(page.locator("#audit-view")).to_contain_text("events")
    expect(page.locator("#chain-view")).to_contain_text("chain intact")
    page.select_option("#find-mode", "email")
    page.fill("#find-identity", EMAIL)
    page.click("#find-form button[type=submit]")
    expect(page.locator("#person")).to_contain_text(token)
    expect(page.locator("#person")).to_contain_text('"plan": "gold"')
    expect(page.locator("#queue-view")).to_contain_text(token)
    labelled(page, "admin")
    shot(page, args, "admin.png", full=False)
    page.locator("#queue-view tr", has_text="change-profile").locator("button").click()
    diff = page.locator("#request-view tr", has_text="city")
    expect(diff.locator("del")).to_have_text('"Leeds"')
    expect(diff.locator("ins")).to_have_text('"York"')
    page.locator("#queue").scroll_into_view_if_needed()
    shot(page, args, "admin-request.png", full=False)
    page.click("#request-view button:has-text('Approve')")
    expect(page.locator("#message")).to_contain_text("approved")
    status, now = api(base, "GET", f"/v1/user/token/{token}", root)
    check(now["data"]["city"] == "York", f"the approved change did not land: {now}")
    # The forget-me request, approved: the person's data is gone.
    page.locator("#queue-view tr", has_text="forget-me").locator("button").click()
    expect(page.locator("#request-view")).to_contain_text("Ann")
    page.click("#request-view button:has-text('Approve')")
    expect(page.locator("#queue-view")).to_contain_text("No open requests")
    status, gone = api(base, "GET", f"/v1/user/token/{token}", root)
    check(status != 200 or not gone.get("data"), f"the person is still readable: {status} {gone}")
    status, gone = api(base, "GET", f"/v1/userapp/token/{token}/shop", root)
    check(status != 200, f"the app data is still readable: {status} {gone}")
    page.select_option("#find-mode", "email")
    page.fill("#find-identity", EMAIL)
    page.click("#find-form button[type=submit]")
    expect(page.locator("#person")).not_to_contain_text('"plan": "gold"')
    # A legal basis from the editor.
    page.click("#bases summary")
    page.fill("#basis-brief", "newsletter")
    page.fill("#basis-short", "Newsletter")
    page.fill("#basis-module", "signup-page")
    page.check("#basis-usercontrol")
    page.click("#basis-form button[type=submit]")
    expect(page.locator("#bases-view")).to_contain_text("newsletter")
    status, bases = api(base, "GET", "/v1/lbasis", root)
    check(any(b["brief"] == "newsletter" for b in bases["rows"]), f"lbasis: {bases}")
    check(page.evaluate("localStorage.length") == 0, "something went to localStorage")
    watch.clean("admin")
    page.click("#logout")
    page.wait_for_url(base + "/")
    # The partner's link ended with the erasure.
    page.goto(f"{base}/site/shared.html#{shared['record']}")
    expect(page.locator("#message")).to_contain_text("does not exist")

    # --- readable on a phone
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    p2 = phone.new_page()
    p2.goto(base + "/")
    overflow = p2.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
    check(not overflow, "the login page scrolls sideways on a phone")
    shot(p2, args, "login-phone.png")
    phone.close()
    ctx.close()


# The server's 5x7 digits, as a reader of the image sees them (the Rust suite keeps
# its own copy too: both read the picture from outside, as a script would).
GLYPHS = [
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
]


def read_captcha(png):
    """The six digits of a captcha image (8-bit grayscale PNG, 128x64)."""
    import struct
    import zlib

    check(png.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG")
    at, w, h, z = 8, 0, 0, b""
    while at + 8 <= len(png):
        (n,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + n]
        if kind == b"IHDR":
            w, h = struct.unpack(">II", data[:8])
        elif kind == b"IDAT":
            z += data
        at += 12 + n
    raw = zlib.decompress(z)
    rows = [raw[y * (w + 1) + 1 : (y + 1) * (w + 1)] for y in range(h)]

    def cell(x0, y0):
        return any(
            x0 + dx < w and y0 + dy < h and rows[y0 + dy][x0 + dx] == 30 for dy in range(3) for dx in range(3)
        )

    out = ""
    for slot in range(6):
        best = (-(10**9), "?")
        for digit, glyph in enumerate(GLYPHS):
            for jx in range(3):
                for jy in range(16):
                    x0, y0 = 8 + slot * 19 + jx, 14 + jy
                    score = 0
                    for r, bits in enumerate(glyph):
                        for c in range(5):
                            on = bits & (0x10 >> c) != 0
                            inked = cell(x0 + c * 3, y0 + r * 3)
                            score += 1 if on and inked else -10 if inked and not on else 0
                    if score > best[0]:
                        best = (score, str(digit))
        out += best[1]
    return out


def demo_code(log, within=20):
    deadline = time.time() + within
    while time.time() < deadline:
        codes = [l.rsplit("-> ", 1)[1].strip() for l in open(log, encoding="utf-8", errors="replace") if l.startswith("DEMO LOGIN CODE")]
        if codes:
            return codes[-1]
        time.sleep(0.1)
    raise AssertionError("the demo printed no login code")


def demo(browser, args):
    started = time.time()
    page = browser.new_page()
    watch = Watch(page, args.base)
    page.goto(args.base + "/")
    img = page.locator("#captcha-img")
    expect(page.locator("#captcha-box")).to_be_visible()
    page.wait_for_function("document.getElementById('captcha-img').naturalWidth > 0")
    first = img.get_attribute("src")
    page.check("input[name=consent][value=core-send-email-on-login]")
    page.fill("#identity", "demo@example.com")
    page.fill("#captcha", "12345")
    page.click("#identify button[type=submit]")
    expect(page.locator("#message")).to_contain_text("six digits")
    # A wrong answer is refused (the token is spent) and a new image shown.
    answer = read_captcha(page.request.get(args.base + first).body())
    page.fill("#captcha", "000000" if answer != "000000" else "111111")
    page.click("#identify button[type=submit]")
    expect(page.locator("#message")).to_contain_text("did not match")
    expect(img).not_to_have_attribute("src", first)
    expect(page.locator("#verify")).to_be_hidden()
    # The right answer, read from the new image, and the code the demo prints.
    page.wait_for_function("document.getElementById('captcha-img').naturalWidth > 0")
    page.fill("#captcha", read_captcha(page.request.get(args.base + img.get_attribute("src")).body()))
    page.click("#identify button[type=submit]")
    expect(page.locator("#verify")).to_be_visible()
    page.fill("#code", demo_code(args.demo_log))
    page.click("#verify button[type=submit]")
    page.wait_for_url("**/site/portal.html")
    expect(page.locator("#profile-view")).to_contain_text("Demo Person")
    check(time.time() - started < 60, "the demo login took over a minute")
    watch.clean("demo")
    page.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--mail")
    p.add_argument("--demo-log")
    p.add_argument("--screenshots")
    args = p.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=os.environ.get("STRONGBOX_CHROMIUM", "/usr/bin/chromium"),
            args=["--no-sandbox"],
        )
        try:
            if args.demo_log:
                demo(browser, args)
            else:
                journey(browser, args)
        finally:
            browser.close()
    print("browser test passed")


if __name__ == "__main__":
    sys.exit(main())

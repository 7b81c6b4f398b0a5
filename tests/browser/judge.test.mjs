// judge.test.mjs - the judge's workspace (docs/portal.md "The judge's
// workspace") in Debian's chromium driven by playwright-core, against the
// demo stack that tests/browser/judge.sh starts.
//
// A demo judge (row 8: a judge's card AND a judge's SIM) signs in with the
// mobile signature (their phone approves by itself), looks a party up for a
// case, composes a notice, signs it on the phone, files it; the party, in
// another browser context signed in with their own mobile signature, sees
// it with the hearing's date, time and place and marks it read; the judge's
// list shows it read.  Then a second notice: downloaded from the page,
// signed by `darvaza-card sign` on the judge's SoftHSM2 card (run by this
// test, as the judge would run it), the .p7s uploaded through the page and
// filed.  axe-core over the workspace in az and en.
//
// Prints TAP without a plan (judge.sh plans):  node judge.test.mjs --count
// Environment: GW_URL, STATE_DIR, SHOT_DIR, CHROMIUM, GW_SPKI, BUILD_DIR,
// DARVAZA_PKCS11_MODULE.

import { execFileSync, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {
  axeClean as axeOver, check, HERE, launch, people, problems, run, shot, test, text, watch,
} from "./harness.mjs";

const { STRINGS } = await import(path.join(HERE, "../../gateway/web/i18n.js"));
const { WORKSPACE_STRINGS } = await import(path.join(HERE, "../../gateway/web/workspace_i18n.js"));
const AZ = { ...STRINGS.az, ...WORKSPACE_STRINGS.az };
const EN = { ...STRINGS.en, ...WORKSPACE_STRINGS.en };

const GW = process.env.GW_URL || "https://localhost:8443";
const STATE = process.env.STATE_DIR || "";
const SHOTS = process.env.SHOT_DIR || "build/browser-judge";
const BUILD_DIR = process.env.BUILD_DIR || "build";
const MODULE = process.env.DARVAZA_PKCS11_MODULE || "/usr/lib/softhsm/libsofthsm2.so";
const STEP_MS = 45000;

// ---------------------------------------------------------------- who is who

function readJson(f) { return JSON.parse(fs.readFileSync(f, "utf8")); }
const cards = () => readJson(path.join(STATE, "cards/cards.json"));
let J = null;       // the judge: people.json entry + card label and PIN
let PARTY = null;   // a citizen with a SIM whose phone is on
function cast() {
  const all = people(STATE);
  const judge = all.find((p) => p.sim === true && p.sim_judge === true && p.phone_on === true && p.phone_control);
  const card = judge && cards().find((c) => c.kind === "judge" && c.fin === judge.fin);
  J = judge && card ? { ...judge, label: card.label, pin: card.pin } : null;
  PARTY = all.find((p) => p.sim === true && p.sim_judge !== true && p.phone_on === true &&
    p.sim_revoked !== true && p.phone_control);
}

// ---------------------------------------------------------------- browser

let browser;

async function newPage(lang = "az") {
  // In Baku, as the parties and judges are: the hearing is shown in Baku time.
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB",
    timezoneId: "Asia/Baku", acceptDownloads: true });
  ctx.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(GW + "/") && !u.startsWith("data:") && !u.startsWith("blob:" + GW + "/")) problems.foreign.push(u);
  });
  const page = await ctx.newPage();
  watch(page);
  await page.goto(GW + "/", { waitUntil: "load" });
  await page.waitForFunction(() => !document.getElementById("view-login").hidden);
  if (lang !== "az") await page.click(`button[data-lang="${lang}"]`);
  return { ctx, page };
}
function phoneShown(ctl) {
  return JSON.parse(execFileSync("curl", ["-sS", "--max-time", "10", "--http2-prior-knowledge",
    `http://127.0.0.1:${ctl}/shown`], { encoding: "utf8" }));
}

// The mobile-signature login of the portal, the phone approving by itself.
async function mobileLogin(page, who) {
  await page.click("#tab-mobile");
  await page.fill("#mob-phone", who.phone);
  await page.fill("#mob-fin", who.fin);
  await page.click("#mob-submit");
  await page.locator("#mob-wait").waitFor({ state: "visible", timeout: STEP_MS });
  const code = (await text(page, "#mob-code")).trim();
  await page.locator("#view-account").waitFor({ state: "visible", timeout: STEP_MS });
  return code;
}

// axe-core over the workspace only (the portal around it has its own tests).
const axeClean = (page, what) => axeOver(page, what, "ws");

// The judge's page, kept across the cases that follow one another.
let judge = null;
const CASE1 = `2-${process.pid % 1000}/2027`;
const CASE2 = `3-${process.pid % 1000}/2027`;
const HEARING = { date: "2027-02-15", time: "10:30", place: "Zal 4, Bakı", court: "Bakı Apellyasiya Məhkəməsi" };

async function compose(page, caseNo, text) {
  await page.fill("#ws-case", caseNo);
  await page.fill("#ws-party", PARTY.fin);
  await page.fill("#ws-court", HEARING.court);
  await page.fill("#ws-date", HEARING.date);
  await page.fill("#ws-time", HEARING.time);
  await page.fill("#ws-place", HEARING.place);
  await page.fill("#ws-text", text);
  await page.click("#ws-compose-submit");
  await page.locator("#ws-doc").waitFor({ state: "visible", timeout: STEP_MS });
  return (await page.textContent("#ws-doc-json"));
}

async function filedRow(page, caseNo) {
  await page.click("#ws-filed-refresh");
  await page.waitForSelector('#ws-filed[aria-busy="false"]');
  const row = page.locator("#ws-filed tr.ws-row", { hasText: caseNo });
  return (await row.count()) ? row.first() : null;
}

// ---------------------------------------------------------------- cases

test("a judge signs in with the mobile signature of a judge's SIM: role judge, the workspace is shown", async () => {
  check(J, "people.json has a judge with a judge's SIM and a phone on (sim_judge, phone_control) and cards.json their card");
  check(PARTY, "people.json has a citizen with a SIM and a phone on");
  judge = await newPage("az");
  const { page } = judge;
  check(await page.locator("#ws").isHidden(), "no workspace before sign-in");
  const code = await mobileLogin(page, J);
  check(phoneShown(J.phone_control).verification_code === code, "the judge's phone showed the page's code", code);
  const s = await page.evaluate(async () => (await fetch("/auth/session")).json());
  check(s.role === "judge" && s.fin === J.fin, "the session: this judge, role judge (from the SIM certificate)", s);
  await page.locator("#ws").waitFor({ state: "visible", timeout: STEP_MS });
  check((await text(page, "#ws-h")) === AZ["ws.title"], "the workspace's heading in Azerbaijani", await text(page, "#ws-h"));
  await page.waitForSelector('#ws-filed[aria-busy="false"]');
  await shot(page, "judge-signed-in");
});

test("lookup: the party by FIN for a case shows the released fields; an unknown FIN is refused with not_found", async () => {
  const { page } = judge;
  await page.click("#ws-lookup-submit");
  check((await text(page, "#ws-lookup-error")).includes("(ws_bad_fin)"), "no FIN: the page says so",
    await text(page, "#ws-lookup-error"));
  check(await page.evaluate(() => document.activeElement.id) === "ws-lookup-fin", "focus on the FIN field");
  await page.fill("#ws-lookup-fin", PARTY.fin.toLowerCase());
  await page.fill("#ws-lookup-case", CASE1);
  await page.click("#ws-lookup-submit");
  await page.waitForSelector('#ws-lookup-result dd[data-field="fin"]', { timeout: STEP_MS });
  const fin = await text(page, '#ws-lookup-result dd[data-field="fin"]');
  const name = await text(page, '#ws-lookup-result dd[data-field="name"]');
  check(fin === PARTY.fin && name === PARTY.name, "the registry's FIN and name of the party", { fin, name });
  check(await page.locator('#ws-lookup-result dd[data-field="birth_date"]').count() === 0,
    "a field the route does not release is not there (birth_date)");
  await page.fill("#ws-lookup-fin", "ZZZZZZ9");
  await page.click("#ws-lookup-submit");
  await page.waitForSelector("#ws-lookup-error:not(:empty)", { timeout: STEP_MS });
  const err = await text(page, "#ws-lookup-error");
  check(err === `${AZ["ws.err.not_found"]} (not_found)`, "an unknown FIN: the registry's not_found, in words", err);
  await page.fill("#ws-lookup-fin", PARTY.fin);
  await page.click("#ws-lookup-submit");
  await page.waitForSelector('#ws-lookup-result dd[data-field="fin"]', { timeout: STEP_MS });
});

test("compose: the page shows the exact document bytes and their SHA-256; the download is those bytes", async () => {
  const { page } = judge;
  const shown = await compose(page, CASE1, "Dinləməyə çağırılırsınız.");
  const want = JSON.stringify({ case: CASE1, party: PARTY.fin, court: HEARING.court,
    hearing: `${HEARING.date}T${HEARING.time}:00+04:00`, place: HEARING.place, text: "Dinləməyə çağırılırsınız." });
  check(shown === want, "the document is the notice as typed", shown);
  const sha = crypto.createHash("sha256").update(Buffer.from(want, "utf8")).digest("hex");
  check((await text(page, "#ws-doc-sha")) === sha, "its SHA-256 on the page", await text(page, "#ws-doc-sha"));
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#ws-doc-download")]);
  const f = path.join(SHOTS, "notice1.json");
  await dl.saveAs(f);
  check(fs.readFileSync(f).equals(Buffer.from(want, "utf8")), "the download is the same bytes");
  check(await page.isDisabled("#ws-file"), "nothing to file before it is signed");
  await axeClean(page, "workspace with a document, az");
  await shot(page, "judge-document");
});

test("mobile-sign: the code on the page is the phone's, the signature comes back, the notice is filed", async () => {
  const { page } = judge;
  await page.waitForFunction(() => document.getElementById("ws-mob-phone").value !== "", null, { timeout: STEP_MS });
  check((await page.inputValue("#ws-mob-phone")) === J.phone, "the judge's number from the registry is filled in",
    await page.inputValue("#ws-mob-phone"));
  await page.click("#ws-mob-sign");
  await page.waitForFunction(() => /^\d{4}$/.test(document.getElementById("ws-mob-code").textContent.trim()),
    null, { timeout: STEP_MS });
  const code = (await text(page, "#ws-mob-code")).trim();
  await shot(page, "judge-mobile-code");
  await page.waitForFunction(() => !document.getElementById("ws-file").disabled, null, { timeout: STEP_MS });
  check(phoneShown(J.phone_control).verification_code === code, "the phone showed the same code", code);
  check((await text(page, "#ws-signed")) === AZ["ws.signed.mobile"], "signed with the mobile signature",
    await text(page, "#ws-signed"));
  await page.click("#ws-file");
  await page.waitForFunction(() => /\d/.test(document.getElementById("ws-file-status").textContent) ||
    document.getElementById("ws-file-error").textContent !== "", null, { timeout: STEP_MS });
  check((await text(page, "#ws-file-error")) === "", "filed without error", await text(page, "#ws-file-error"));
  const row = await filedRow(page, CASE1);
  check(row, "the filed list shows the notice", await text(page, "#ws-filed"));
  check((await row.getAttribute("data-read")) === "no", "not read yet");
  const cells = await row.locator("td").allInnerTexts();
  check(cells[1] === PARTY.fin && cells[5] === AZ["ws.read.not"], "party and read status", cells);
  check(cells[4] !== "" && cells[4] !== AZ["ws.delivery.none"], "a delivery to the party's phone", cells);
  await shot(page, "judge-filed");
});

test("the party (another browser, own mobile signature) sees the notice with the hearing's date, time and place, and marks it read", async () => {
  const party = await newPage("en");
  try {
    await mobileLogin(party.page, PARTY);
    const p = party.page;
    const item = p.locator("#acc-notices li", { hasText: CASE1 });
    await item.first().waitFor({ state: "visible", timeout: STEP_MS });
    const t = await item.first().innerText();
    check(t.includes(HEARING.court) && t.includes(HEARING.place) && t.includes("15 February 2027, 10:30"),
      "court, place and the hearing: 15 February 2027, 10:30 (Baku time)", t);
    const ps = await p.evaluate(async () => (await fetch("/auth/session")).json());
    check(ps.role === "citizen", "a citizen's SIM: role citizen", ps);
    check(await p.locator("#ws").isHidden(), "a citizen has no workspace");
    // The judge's lookup for the case is in the party's "Who accessed my data".
    const acc = p.locator("#access-list tr.access-row", { hasText: CASE1 });
    await acc.first().waitFor({ state: "visible", timeout: STEP_MS });
    const accText = await acc.first().innerText();
    check(accText.includes(J.fin), "the party sees the judge's lookup for the case", accText);
    await item.first().locator(".notice-actions button").click();
    await item.first().locator(".notice-read").filter({ hasText: /\d/ }).waitFor({ timeout: STEP_MS });
    await shot(p, "party-read");
  } finally {
    await party.ctx.close();
  }
});

test("the judge's list shows the notice read", async () => {
  const { page } = judge;
  const row = await filedRow(page, CASE1);
  check(row && (await row.getAttribute("data-read")) === "yes", "read", row ? await row.innerText() : "no row");
  check((await row.locator("td.ws-read").innerText()).startsWith(AZ["ws.read.at"].split("{")[0]), "says when",
    await row.innerText());
});

test("the upload path: the page's command run with darvaza-card sign on the judge's card, the .p7s uploaded and filed", async () => {
  const { page } = judge;
  await compose(page, CASE2, "İkinci bildiriş: sənədləri gətirin.");
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#ws-doc-download")]);
  const name = dl.suggestedFilename();
  const dir = fs.mkdtempSync(path.join(SHOTS, "card-"));
  await dl.saveAs(path.join(dir, name));
  const cmd = (await text(page, "#ws-doc-cmd")).trim().split(/\s+/);
  check(cmd[0] === "darvaza-card" && cmd[1] === "sign" && cmd[2] === name && cmd[3] === "-o" && cmd[4] === name + ".p7s",
    "the page's command signs the downloaded file", cmd);
  const pin = path.join(dir, "pin");
  fs.writeFileSync(pin, J.pin + "\n", { mode: 0o600 });
  // The judge's own command, plus what this machine needs: which token,
  // the PIN (no terminal here) and the PKCS#11 module.
  const r = spawnSync(path.join(BUILD_DIR, "darvaza-card"), [...cmd.slice(1), "--token", J.label,
    "--pin-file", pin, "--module", MODULE, "--chain", path.join(STATE, "certs/esign-ca.pem")],
  { cwd: dir, encoding: "utf8", timeout: 60000, env: { ...process.env, SOFTHSM2_CONF: path.join(STATE, "cards/softhsm2.conf") } });
  check(r.status === 0, "darvaza-card sign succeeded", r.stderr);
  const sha = await text(page, "#ws-doc-sha");
  check(r.stderr.includes(`SHA-256 ${sha}`), "darvaza-card showed the same SHA-256 as the page before signing", r.stderr);
  await page.setInputFiles("#ws-p7s", path.join(dir, name + ".p7s"));
  await page.waitForFunction(() => !document.getElementById("ws-file").disabled, null, { timeout: STEP_MS });
  check((await text(page, "#ws-signed")) === AZ["ws.signed.file"], "signed with the file", await text(page, "#ws-signed"));
  await page.click("#ws-file");
  await page.waitForFunction(() => /\d/.test(document.getElementById("ws-file-status").textContent) ||
    document.getElementById("ws-file-error").textContent !== "", null, { timeout: STEP_MS });
  check((await text(page, "#ws-file-error")) === "", "filed without error", await text(page, "#ws-file-error"));
  check(await filedRow(page, CASE2), "the list shows the second notice", await text(page, "#ws-filed"));
  fs.rmSync(dir, { recursive: true, force: true });
});

test("axe-core: the workspace is clean in az and en, and its texts follow the language", async () => {
  const { page } = judge;
  await axeClean(page, "workspace with filed notices, az");
  await page.click('button[data-lang="en"]');
  check((await text(page, "#ws-h")) === EN["ws.title"], "English heading", await text(page, "#ws-h"));
  check((await page.locator("#ws-filed caption").innerText()) === EN["ws.filed.caption"], "the list in English");
  const st = await text(page, "#ws-file-status");
  check(st.startsWith(EN["ws.file.done"].split("{")[0]), "the last message redrawn in English", st);
  await axeClean(page, "workspace with filed notices, en");
  await shot(page, "judge-en");
});

test("no CSP violation, no script error, no request to another origin", async () => {
  check(!problems.csp.length, "no CSP report", problems.csp);
  check(!problems.errors.length, "no script error", problems.errors);
  check(!problems.foreign.length, "nothing fetched from another origin", problems.foreign);
});

// ---------------------------------------------------------------- runner

await run({
  shots: SHOTS,
  before: async () => {
    cast();
    browser = await launch(process.env.GW_SPKI);
  },
  after: async () => {
    if (judge) await judge.ctx.close();
    await browser.close();
  },
});

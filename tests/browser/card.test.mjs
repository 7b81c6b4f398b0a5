// card.test.mjs - the card login of a browser (docs/cards.md "In the
// browser") in Debian's chromium with a real PKCS#11 stack: each card is a
// copy of one demo SoftHSM2 token, registered in its own NSS database
// ($HOME/.pki/nssdb, modutil) through the PIN-pad module
// (pinpad_pkcs11.c); the AutoSelectCertificateForUrls policy picks the card
// certificate without a dialog.  tests/browser/card.sh prepares all that and
// starts the stack.  A citizen and a judge sign in; a revoked card is refused
// with the page's explanation; a browser with no card is asked for no
// certificate by the portal's origin (Chromium's own net log says which
// hosts asked) and is told why the card listener refused it.
//
// Prints TAP without a plan (card.sh plans):  node card.test.mjs --count
// Environment: GW_URL, CARD_URL, GW_SPKI, SHOT_DIR, CHROMIUM, AUDIT (the
// audit log), CARDS (JSON: [{name, home, fin, role, kind}]).

import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { check, chromiumArgs, CHROMIUM, Failure, HERE, run, test } from "./harness.mjs";

const { STRINGS } = await import(path.join(HERE, "../../gateway/web/i18n.js"));
const AZ = STRINGS.az;

const GW = process.env.GW_URL || "https://localhost:8443";
const CARD = process.env.CARD_URL || "https://localhost:8444";
const SHOTS = process.env.SHOT_DIR || "build/browser";
const AUDIT = process.env.AUDIT || "";
const CARDS = JSON.parse(process.env.CARDS || "[]");
const STEP_MS = 45000;

const card = (name) => {
  const c = CARDS.find((x) => x.name === name);
  if (!c) throw new Failure(`card.sh made no ${name} card`);
  return c;
};

// One browser per person: its own profile, its own $HOME (the NSS database
// with that person's card, or none), and a net log of its TLS handshakes.
async function open(name, home) {
  const dir = fs.mkdtempSync(path.join(SHOTS, `profile-${name}-`));
  const netlog = path.join(dir, "netlog.json");
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    // The card's SoftHSM2 configuration and PIN file live in its $HOME
    // (card.sh); the PIN-pad module and SoftHSM2 read them from here.
    env: { ...process.env, HOME: home, SOFTHSM2_CONF: path.join(home, "softhsm2.conf"),
      DZ_PINPAD_PIN_FILE: path.join(home, "pin") },
    args: chromiumArgs(process.env.GW_SPKI, [`--log-net-log=${netlog}`, "--net-log-capture-mode=Default"]),
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  return { ctx, page, netlog };
}

// The peers that asked this browser for a client certificate: the net log's
// SSL_CLIENT_CERT_REQUESTED events, by their socket's address:port.
function certRequests(netlog) {
  const text = fs.readFileSync(netlog, "utf8");
  let log;
  try {
    log = JSON.parse(text);
  } catch (e) { // a browser that did not close cleanly leaves the events open
    log = JSON.parse(text.replace(/,\s*$/, "") + "]}");
  }
  const types = log.constants.logEventTypes;
  const want = types.SSL_CLIENT_CERT_REQUESTED;
  const hosts = new Map(); // source id -> host
  const asked = new Set();
  for (const e of log.events || []) {
    // The socket's TCP_CONNECT names the peer ("127.0.0.1:8444").
    const h = e.params && (e.params.remote_address || (e.params.address_list || [])[0]);
    if (h && !hosts.has(e.source.id)) hosts.set(e.source.id, String(h));
    if (e.type === want) asked.add(e.source.id);
  }
  return [...asked].map((id) => hosts.get(id) || `source ${id}`);
}

async function signIn(page) {
  await page.goto(GW + "/");
  await page.click("#tab-card");
  await page.click("#card-tls", { noWaitAfter: true });
}

function lastLogin(fin) {
  const lines = fs.readFileSync(AUDIT, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  return lines.filter((l) => l.type === "login" && l.means === "card_tls" && l.fin === fin).pop();
}

async function signsIn(name) {
  const c = card(name);
  const b = await open(name, c.home);
  try {
    await signIn(b.page);
    await b.page.waitForURL(/#\/account$/, { timeout: STEP_MS });
    await b.page.waitForSelector("#view-account:not([hidden])", { timeout: STEP_MS });
    const body = await b.page.textContent("#view-account");
    check(body.includes(c.fin), `the account page shows the FIN ${c.fin}`, body.slice(0, 300));
    const s = await b.page.evaluate(async () => (await fetch("/auth/session")).json());
    check(s.fin === c.fin && s.acr === "high" && s.method === "card", "a high card session", s);
    const line = lastLogin(c.fin);
    check(line && line.result === "ok" && line.role === c.role, `audit: card_tls login as ${c.role}`, line);
    await b.page.screenshot({ path: path.join(SHOTS, `card-${name}.png`), fullPage: true });
  } finally {
    await b.ctx.close();
  }
  return b.netlog;
}

let citizenLog = null;

test("a citizen signs in with the card in Chromium (NSS + PKCS#11, no dialog)", async () => {
  citizenLog = await signsIn("citizen");
});

test("the card browser was asked for a certificate by the card listener only", async () => {
  check(citizenLog, "the citizen's browser ran");
  const asked = certRequests(citizenLog);
  check(asked.some((h) => h.includes(":8444")), "the card listener asked", asked);
  check(!asked.some((h) => h.includes(":8443")), "the portal's origin did not ask", asked);
});

test("a judge signs in with the card; the session carries the judge role", async () => {
  await signsIn("judge");
});

test("a revoked card is refused: back on the portal with a clear message", async () => {
  const c = card("revoked");
  const b = await open("revoked", c.home);
  try {
    await signIn(b.page);
    await b.page.waitForSelector("#card-error:not(:empty)", { timeout: STEP_MS });
    const msg = await b.page.textContent("#card-error");
    check(msg.startsWith(AZ["err.certificate_revoked"]), "the revoked-card message", msg);
    check(await b.page.evaluate(() => location.hash) === "", "the refusal is gone from the address bar",
      await b.page.evaluate(() => location.hash));
    check(await b.page.evaluate(() => !document.getElementById("panel-card").hidden), "the card tab is shown");
    const s = await b.page.evaluate(async () => (await fetch("/auth/session")).status);
    check(s === 401, "no session", s);
    await b.page.screenshot({ path: path.join(SHOTS, "card-revoked.png"), fullPage: true });
  } finally {
    await b.ctx.close();
  }
});

test("a browser without a card: the portal asks for no certificate; the card listener's refusal is explained", async () => {
  const b = await open("nocard", card("none").home);
  try {
    await b.page.goto(GW + "/");
    await b.page.click("#tab-card");
    await b.page.reload();
    await signIn(b.page);
    await b.page.waitForSelector("#card-error:not(:empty)", { timeout: STEP_MS });
    const msg = await b.page.textContent("#card-error");
    check(msg.startsWith(AZ["err.certificate_required"]), "the no-certificate message", msg);
  } finally {
    await b.ctx.close();
  }
  const asked = certRequests(b.netlog);
  check(!asked.some((h) => h.includes(":8443")), "the portal's origin never asked for a certificate", asked);
  check(asked.some((h) => h.includes(":8444")), "only the card listener did", asked);
});

// One browser per person (open()): no shared browser, no time limit of the
// runner's own (each step waits at most STEP_MS).
await run({ shots: SHOTS });

// oidc.test.mjs - the OpenID Connect provider with a real relying party in a
// real browser: Debian's chromium (playwright-core) opens the demo e-service
// (Apache httpd + mod_auth_openidc at https://127.0.0.1:9150/, started by
// tests/integration/t_oidc_browser.sh), is sent to darvaza, signs in and
// comes back to a page that shows the claims mod_auth_openidc received.
// Then: a page that needs "high" makes a password session step up (only the
// ways in that reach it are offered; mobile signature, approved by the demo
// phone); a person already signed in at the portal goes through without a
// step; logout at darvaza reaches the e-service by back-channel logout.
//
// Prints TAP without a plan ("node oidc.test.mjs --count" for the count).
// Environment: GW_URL, RP_URL, STATE_DIR, SHOT_DIR, CHROMIUM, SPKI_LIST.

import {
  check, Failure, launch, people, run, shot, sleep, test, text, totp, visible,
} from "./harness.mjs";

const GW = process.env.GW_URL || "https://localhost:8443";
const RP = process.env.RP_URL || "https://127.0.0.1:9150";
const STATE = process.env.STATE_DIR || "";
const SHOTS = process.env.SHOT_DIR || "build/browser-oidc";
const CASE_TIMEOUT_MS = Number(process.env.CASE_TIMEOUT_MS || 60000);

let browser;
let P = {};
function cast() {
  const all = people(STATE);
  const reg = all.filter((p) => p.registered === true && typeof p.password === "string" && p.totp_secret);
  // The step-up needs someone with a password AND a phone that approves.
  const both = reg.filter((p) => p.sim === true && p.phone_on === true && p.sim_revoked !== true && p.phone);
  const a = both[0] || reg[0];
  const others = reg.filter((p) => p !== a);
  P = { a, b: others[0], c: others[1] || others[0] };
}

// A TOTP step is used once: wait for the next one rather than reuse it.
let lastOtp = {};
async function freshOtp(p) {
  for (let i = 0; i < 80; i++) {
    const c = totp(p.totp_secret);
    if (lastOtp[p.fin] !== c) { lastOtp[p.fin] = c; return c; }
    await sleep(500);
  }
  throw new Failure("no fresh TOTP step in 40 s");
}

async function passwordLogin(page, p) {
  await visible(page, "#form-password");
  await page.fill("#pw-fin", p.fin);
  await page.fill("#pw-password", p.password);
  await page.fill("#pw-otp", await freshOtp(p));
  await page.click("#pw-submit");
}

async function claims(page) {
  await visible(page, "#sub");
  return { sub: await text(page, "#sub"), acr: await text(page, "#acr"), amr: await text(page, "#amr") };
}

let ctxA; // person A's browser, kept across the cases that follow each other
let pageA;

test("the e-service sends the browser to darvaza's sign-in, which names it", async () => {
  ctxA = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB" });
  pageA = await ctxA.newPage();
  await pageA.goto(RP + "/", { waitUntil: "load" });
  check(pageA.url().startsWith(GW + "/?oidc="), "on darvaza's page", pageA.url());
  await visible(pageA, "#oidc-login");
  const note = await text(pageA, "#oidc-login");
  check(note.includes("Demo e-service"), "the page names the e-service", note);
  check(!(await pageA.locator("#tab-password").isHidden()), "password is offered for substantial");
  await shot(pageA, "oidc-login");
});

test("FIN + password + TOTP at darvaza lands back on the e-service page showing sub, acr, amr", async () => {
  await passwordLogin(pageA, P.a);
  await pageA.waitForURL(RP + "/", { timeout: 20000 });
  const c = await claims(pageA);
  check(c.sub === P.a.fin && c.acr === "substantial" && c.amr === "pwd,otp", "sub = FIN, substantial, pwd+otp", c);
  await shot(pageA, "eservice-claims");
});

test("a page that needs high: step-up at darvaza with only the ways that reach it, mobile signature, back with acr high", async () => {
  check(P.a.phone, "the person has a SIM (people.json)");
  await pageA.click("#high");
  await pageA.waitForURL((u) => u.toString().startsWith(GW + "/?oidc="), { timeout: 20000 });
  check(pageA.url().includes("acr=high"), "asked for high", pageA.url());
  await visible(pageA, "#oidc-login");
  check(await pageA.locator("#tab-password").isHidden() && await pageA.locator("#form-password").isHidden(),
    "no password tab or form: it cannot reach high");
  check(await pageA.getAttribute("#tab-mobile", "aria-selected") === "true", "mobile signature offered first");
  await shot(pageA, "oidc-stepup");
  await pageA.fill("#mob-phone", P.a.phone);
  await pageA.fill("#mob-fin", P.a.fin);
  await pageA.click("#mob-submit");
  await pageA.waitForURL(RP + "/high/", { timeout: 45000 });
  const c = await claims(pageA);
  check(c.sub === P.a.fin && c.acr === "high" && c.amr.split(",").includes("mob"), "high, by mobile signature", c);
  await shot(pageA, "eservice-high");
});

test("signed in at the portal already: the e-service page opens with no further step", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB" });
  try {
    const page = await ctx.newPage();
    await page.goto(GW + "/", { waitUntil: "load" });
    await passwordLogin(page, P.b);
    await visible(page, "#view-account");
    await page.goto(RP + "/", { waitUntil: "load" });
    check(page.url() === RP + "/", "straight back to the e-service", page.url());
    const c = await claims(page);
    check(c.sub === P.b.fin && c.acr === "substantial", "its own claims", c);
  } finally {
    await ctx.close();
  }
});

test("a client that is not pre-approved: the consent page names it, its register entry, fields and purpose; approving goes on with a code", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB" });
  try {
    const page = await ctx.newPage();
    await page.goto(GW + "/", { waitUntil: "load" });
    await passwordLogin(page, P.c);
    await visible(page, "#view-account");
    const q = new URLSearchParams({ client_id: "demo-consent", response_type: "code", scope: "openid",
      redirect_uri: "https://127.0.0.1:9151/callback", state: "st-1", ui_locales: "en",
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256" });
    await page.goto(GW + "/authorize?" + q, { waitUntil: "load" });
    await visible(page, "#view-consent");
    const lead = await text(page, "#consent-lead");
    check(lead.includes("Demo municipal library") && lead.includes("DIS-0102"), "service and register entry", lead);
    check((await text(page, "#consent-purpose")).includes("library account"), "the purpose");
    check((await text(page, "#consent-fields")).includes("FIN"), "the fields", await text(page, "#consent-fields"));
    check(await page.evaluate(() => document.activeElement && document.activeElement.id) === "consent-title",
      "focus on the page's heading (screen readers start there)");
    check(await page.getAttribute("html", "lang") === "en", "ui_locales=en shows English");
    await shot(page, "consent");
    // Nothing listens at the client's address: the navigation is what counts.
    const nav = page.waitForRequest((r) => r.url().startsWith("https://127.0.0.1:9151/callback?"), { timeout: 20000 });
    await page.click("#consent-approve");
    const u = new URL((await nav).url());
    check(/^[A-Za-z0-9_-]{43}$/.test(u.searchParams.get("code") || "") && u.searchParams.get("state") === "st-1",
      "the client gets a code and its state", u.toString());
  } finally {
    await ctx.close();
  }
});

test("logout at darvaza reaches the e-service by back-channel logout: its session is gone", async () => {
  const page = await ctxA.newPage();
  await page.goto(GW + "/", { waitUntil: "load" });
  await visible(page, "#view-account");
  await page.click("#logout");
  await visible(page, "#view-login");
  // mod_auth_openidc's session ended with the logout token: the e-service
  // now sends the browser to darvaza again, where nobody is signed in.
  let url = "";
  for (let i = 0; i < 50; i++) {
    await pageA.goto(RP + "/", { waitUntil: "load" });
    url = pageA.url();
    if (url.startsWith(GW + "/?oidc=")) break;
    await sleep(200);
  }
  check(url.startsWith(GW + "/?oidc="), "the e-service no longer knows the person", url);
  await visible(pageA, "#oidc-login");
  await shot(pageA, "after-backchannel");
  await page.close();
  await ctxA.close();
});

await run({
  shots: SHOTS,
  timeoutMs: CASE_TIMEOUT_MS,
  before: async () => {
    cast();
    // Trust exactly the gateway's and the e-service's keys.
    browser = await launch(process.env.SPKI_LIST);
  },
  after: () => browser.close(),
});

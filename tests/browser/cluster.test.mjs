// cluster.test.mjs - QR login in a real browser against the demo cluster
// (demo/cluster.sh, started by tests/integration/t_cluster_browser.sh):
// Debian's chromium (playwright-core) opens the portal through haproxy
// (https://localhost:8443, TLS passed through to instance A or B), shows the
// QR code; the test finds out which instance holds the page's long poll
// (darvaza_long_polls_waiting on each instance's management listener) and
// sends the phone (`darvaza-peer phone scan`) to the OTHER instance directly;
// the page must sign in by itself, its poll woken by the other instance's
// publish through Redis (darvaza_long_poll_wakeups_total).
//
// Prints TAP without a plan ("node cluster.test.mjs --count" for the count).
// Environment: LB_URL, A_URL, B_URL, A_MGMT, B_MGMT, STATE_DIR (people.json,
// certs/), SHOT_DIR, PEER_BIN, CHROMIUM, GW_SPKI, TAP_OFFSET.

import { chromium } from "playwright-core";
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const LB = process.env.LB_URL || "https://localhost:8443";
const INST = {
  A: { url: process.env.A_URL || "https://localhost:8451", mgmt: process.env.A_MGMT || "http://127.0.0.1:9181" },
  B: { url: process.env.B_URL || "https://localhost:8452", mgmt: process.env.B_MGMT || "http://127.0.0.1:9182" },
};
const STATE = process.env.STATE_DIR || "";
const SHOTS = process.env.SHOT_DIR || "build/browser-cluster";
const PEER_BIN = process.env.PEER_BIN || "build/darvaza-peer";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CASE_TIMEOUT_MS = Number(process.env.CASE_TIMEOUT_MS || 60000);

const cases = [];
const test = (name, fn) => cases.push({ name, fn });
class Failure extends Error {}
function check(cond, what, got) {
  if (!cond) throw new Failure(got === undefined ? what : `${what} (got: ${JSON.stringify(got).slice(0, 400)})`);
}

let browser;
let shotN = 0;
async function shot(page, name) {
  shotN++;
  await page.screenshot({ path: path.join(SHOTS, `${String(shotN).padStart(2, "0")}-${name}.png`), fullPage: true });
}
async function decodeQr(locator, name) {
  shotN++;
  const file = path.join(SHOTS, `${String(shotN).padStart(2, "0")}-${name}.png`);
  await locator.screenshot({ path: file });
  return execFileSync("zbarimg", ["--raw", "-q", file], { encoding: "utf8", timeout: 10000 }).trim();
}
const visible = (page, sel, timeout = 20000) => page.locator(sel).waitFor({ state: "visible", timeout });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One sample of an instance's /metrics (NaN when it does not answer).
async function metric(which, series) {
  try {
    const r = await fetch(INST[which].mgmt + "/metrics", { signal: AbortSignal.timeout(5000) });
    const line = (await r.text()).split("\n").find((l) => l.split(" ")[0] === series);
    return line ? Number(line.split(" ")[1]) : NaN;
  } catch {
    return NaN;
  }
}

// Wait (bounded) until exactly one instance holds a waiting long poll: the
// page's.  Its name, or null.
async function pollHolder(timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const a = await metric("A", "darvaza_long_polls_waiting");
    const b = await metric("B", "darvaza_long_polls_waiting");
    if (a >= 1 && b === 0) return "A";
    if (b >= 1 && a === 0) return "B";
    await sleep(100);
  }
  return null;
}

function qrHolder() {
  const all = JSON.parse(fs.readFileSync(path.join(STATE, "people.json"), "utf8"));
  const list = Array.isArray(all) ? all : all.people;
  return list.find((p) => p.sim === true && p.phone_on === true && p.sim_revoked !== true);
}

let ctx;
let page;
let P;
let payload;
let holder;

test("the portal through haproxy (https://localhost:8443): the QR tab shows a code that decodes", async () => {
  P = qrHolder();
  check(P, "people.json has a SIM holder whose phone is on");
  ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 2, locale: "en-GB" });
  page = await ctx.newPage();
  await page.goto(LB + "/", { waitUntil: "load" });
  await page.waitForFunction(() => !document.getElementById("view-login").hidden);
  await page.click("#tab-qr");
  await visible(page, "#qr-img");
  await page.waitForFunction(() => document.getElementById("qr-img").naturalWidth > 0);
  await shot(page, "cluster-qr-shown");
  payload = await decodeQr(page.locator("#qr-img"), "cluster-qr-code");
  check(/^darvaza-qr:1:[A-Za-z0-9_-]+:\d+:[0-9a-f]{16,64}$/.test(payload), "a darvaza-qr payload", payload);
});

test("the page's long poll waits on one instance (its darvaza_long_polls_waiting, the other's 0)", async () => {
  check(page, "the page is open (previous case)");
  holder = await pollHolder(15000);
  check(holder, "exactly one instance holds the page's poll", holder);
  console.log(`# the page's connection went to instance ${holder}; the phone goes to ${holder === "A" ? "B" : "A"}`);
});

test("the phone answers on the other instance directly; the page signs in by itself, woken through Redis", async () => {
  check(holder && payload, "the previous cases found the poll and the code");
  const other = holder === "A" ? "B" : "A";
  const woken0 = await metric(holder, "darvaza_long_poll_wakeups_total");
  // The payload shown a moment ago may be older than the gateway's
  // freshness window by now: decode the code on the screen again.
  payload = await decodeQr(page.locator("#qr-img"), "cluster-qr-code-again");
  const out = await new Promise((resolve) => {
    execFile(PEER_BIN, ["phone", "scan", payload, "--gateway", INST[other].url, "--origin", LB,
      "--cacert", path.join(STATE, "certs/root.pem"), "--key", P.sim_key, "--pin", String(P.sim_pin),
      "--cert", P.sim_cert], { timeout: 20000, encoding: "utf8" }, (err, stdout, stderr) => resolve({ err, stdout, stderr }));
  });
  check(!out.err && /accepted/.test(out.stdout), `the phone's answer on instance ${other} is accepted`, out.stdout + out.stderr);
  await visible(page, "#view-account", 30000);
  const sess = await page.locator("#acc-session").innerText();
  check(sess.includes(P.fin), "the page shows the holder's session", sess);
  await shot(page, "cluster-signed-in-qr");
  const woken = await metric(holder, "darvaza_long_poll_wakeups_total");
  check(woken - woken0 >= 1, `instance ${holder}'s poll was woken by ${other}'s publish (wake-ups +1)`, { woken0, woken });
});

test("the page's session works on both instances (its cookie sent to A and to B directly)", async () => {
  check(page, "the page is open");
  const cookies = await ctx.cookies(LB);
  const header = cookies.map((c) => `${c.name}=${c.value}`).join("; ");
  for (const w of ["A", "B"]) {
    const code = execFileSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
      "--cacert", path.join(STATE, "certs/root.pem"), "-H", `Cookie: ${header}`, INST[w].url + "/auth/session"],
    { encoding: "utf8" }).trim();
    check(code === "200", `GET /auth/session on instance ${w} with the page's cookie -> 200`, code);
  }
  await ctx.close();
});

if (process.argv.includes("--count")) {
  console.log(cases.length);
  process.exit(0);
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      // Trust exactly the gateway's key (both instances and haproxy's passthrough show it).
      ...(process.env.GW_SPKI ? [`--ignore-certificate-errors-spki-list=${process.env.GW_SPKI}`] : [])],
  });
  let n = Number(process.env.TAP_OFFSET || 0);
  for (const c of cases) {
    n++;
    const t0 = Date.now();
    let err = null;
    let timer;
    try {
      await Promise.race([c.fn(), new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Failure(`timed out after ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
      })]);
    } catch (e) {
      err = e;
    } finally {
      clearTimeout(timer);
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (!err) console.log(`ok ${n} - ${c.name} (${secs}s)`);
    else {
      console.log(`not ok ${n} - ${c.name}`);
      const msg = err instanceof Failure ? err.message : (err && err.stack) || String(err);
      for (const l of String(msg).split("\n").slice(0, 12)) console.log("# " + l);
    }
  }
  await browser.close();
}

main().catch((e) => {
  console.log("Bail out! " + String(e && e.message ? e.message : e).replace(/[\r\n]+/g, " "));
  process.exit(1);
});

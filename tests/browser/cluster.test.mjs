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

import { execFile, execFileSync } from "node:child_process";
import path from "node:path";
import { check, decodeQr, launch, people, run, shot, sleep, test, visible } from "./harness.mjs";

const LB = process.env.LB_URL || "https://localhost:8443";
const INST = {
  A: { url: process.env.A_URL || "https://localhost:8451", mgmt: process.env.A_MGMT || "http://127.0.0.1:9181" },
  B: { url: process.env.B_URL || "https://localhost:8452", mgmt: process.env.B_MGMT || "http://127.0.0.1:9182" },
};
const STATE = process.env.STATE_DIR || "";
const SHOTS = process.env.SHOT_DIR || "build/browser-cluster";
const PEER_BIN = process.env.PEER_BIN || "build/darvaza-peer";
const CASE_TIMEOUT_MS = Number(process.env.CASE_TIMEOUT_MS || 60000);

let browser;

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
  return people(STATE).find((p) => p.sim === true && p.phone_on === true && p.sim_revoked !== true);
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

await run({
  shots: SHOTS,
  timeoutMs: CASE_TIMEOUT_MS,
  // Trust exactly the gateway's key (both instances and haproxy's passthrough show it).
  before: async () => { browser = await launch(process.env.GW_SPKI); },
  after: () => browser.close(),
});

// harness.mjs - what every Chromium test file here needs, written once: the
// TAP runner (cases in order, an optional per-case time limit, "ok N" /
// "not ok N" with the reason as "# " lines, "Bail out!" when the browser
// cannot start), Debian's chromium launched with the same flags and the
// gateway's SPKI pin, the Failure/check pair, screenshots numbered in the
// order they are taken, zbarimg on a screenshot, axe-core, and small waits.
//
// A test file registers its cases with test(name, fn) and ends with
// await run({...}).  Environment read here: CHROMIUM (default
// /usr/bin/chromium), TAP_OFFSET (the first test's number minus one, when
// the calling script printed tests of its own first), ONLY (a regex: run
// only the cases whose name matches, for working on one case by hand; the
// scripts never set it, so every planned test runs).

import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

// ---------------------------------------------------------------- checks

// A Failure is an expected "no": its message alone is printed, no stack.
export class Failure extends Error {}

export const clip = (v) => {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s && s.length > 400 ? s.slice(0, 400) + "…" : s;
};

export function check(cond, what, got) {
  if (!cond) throw new Failure(got === undefined ? what : `${what} (got: ${clip(got)})`);
}

// ---------------------------------------------------------------- cases

export const cases = [];
export const test = (name, fn) => cases.push({ name, fn });

const tapLine = (s) => String(s).replace(/[\r\n]+/g, " ");

async function runOne(c, timeoutMs) {
  if (!timeoutMs) return c.fn();
  let timer;
  try {
    return await Promise.race([c.fn(), new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Failure(`timed out after ${timeoutMs} ms`)), timeoutMs);
    })]);
  } finally {
    clearTimeout(timer);
  }
}

// "--count" prints how many cases there are (the calling script plans with
// it) and exits.  Otherwise: before(), every case, after().  timeoutMs 0
// means no limit of our own (the case's own waits bound it).
export async function run({ shots, timeoutMs = 0, before = async () => {}, after = async () => {} }) {
  if (process.argv.includes("--count")) {
    console.log(cases.length);
    process.exit(0);
  }
  try {
    fs.mkdirSync(shots, { recursive: true });
    shotDir = shots;
    await before();
    let n = Number(process.env.TAP_OFFSET || 0);
    const only = process.env.ONLY ? new RegExp(process.env.ONLY) : null;
    for (const c of cases) {
      n++;
      if (only && !only.test(c.name)) continue;
      const t0 = Date.now();
      try {
        await runOne(c, timeoutMs);
        console.log(`ok ${n} - ${tapLine(c.name)} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
      } catch (e) {
        console.log(`not ok ${n} - ${tapLine(c.name)}`);
        const msg = e instanceof Failure ? e.message : (e && e.stack) || String(e);
        for (const l of String(msg).split("\n").slice(0, 12)) console.log("# " + l);
      }
    }
    await after();
  } catch (e) {
    console.log("Bail out! " + tapLine(e && e.message ? e.message : e));
    process.exit(1);
  }
}

// ---------------------------------------------------------------- browser

// The flags every browser here starts with: no sandbox (root in CI), no
// GPU, no QUIC (the gateway speaks TCP only), nothing fetched in the
// background; and trust exactly the keys in spki (a comma-separated list of
// SPKI hashes: the demo PKI is in no store).
export function chromiumArgs(spki, extra = []) {
  return ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ...extra, ...(spki ? [`--ignore-certificate-errors-spki-list=${spki}`] : [])];
}

export const launch = (spki) => chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(spki) });

// What a page must not do, gathered over a whole run and checked by a last
// case: CSP violations, script errors.  Requests to other origins are the
// caller's to judge (the allowed ones differ): problems.foreign.
export const problems = { csp: [], errors: [], foreign: [] };
export function watch(page) {
  page.on("console", (m) => {
    const text = m.text();
    if (/Content Security Policy/i.test(text)) problems.csp.push(text);
    // A failed fetch (401 before sign-in, 404 of an absent service) is
    // logged by Chromium as a resource error: expected, not a script error.
    else if (m.type() === "error" && !/Failed to load resource/.test(text)) problems.errors.push(text);
  });
  page.on("pageerror", (e) => problems.errors.push("pageerror: " + e.message));
}

export const text = (page, sel) => page.locator(sel).innerText();
export const visible = (page, sel, timeout = 20000) => page.locator(sel).waitFor({ state: "visible", timeout });
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- screenshots

// Numbered in the order taken (01-name.png, ...) in the run's shots dir.
let shotDir = "build/browser";
let shotN = 0;
function nextShot(name) {
  shotN++;
  return path.join(shotDir, `${String(shotN).padStart(2, "0")}-${name}.png`);
}

export async function shot(page, name) {
  const file = nextShot(name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// zbarimg on a screenshot of one element.
export async function decodeQr(locator, name) {
  const file = nextShot(name);
  await locator.screenshot({ path: file });
  return execFileSync("zbarimg", ["--raw", "-q", file], { encoding: "utf8", timeout: 10000 }).trim();
}

// axe-core over the page as it is now, or over the element with id scope
// (through the debugging protocol, so the page's CSP stays as it is): no
// WCAG 2.1 A/AA or best-practice violation.
let axeSrc = null;
export async function axeClean(page, what, scope = null) {
  axeSrc ??= fs.readFileSync(path.join(HERE, "node_modules/axe-core/axe.min.js"), "utf8");
  await page.evaluate(axeSrc);
  const r = await page.evaluate(async (id) => {
    const res = await window.axe.run(id ? document.getElementById(id) : document,
      { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] });
    return res.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  }, scope);
  check(r.length === 0, `axe-core: no violation (${what})`, r);
}

// ---------------------------------------------------------------- the demo

// The demo's people (STATE_DIR/people.json: a list, or {people: [...]}).
export function people(stateDir) {
  const j = JSON.parse(fs.readFileSync(path.join(stateDir, "people.json"), "utf8"));
  return Array.isArray(j) ? j : j.people;
}

export const totp = (secret) => execFileSync("oathtool", ["--totp", "-b", secret], { encoding: "utf8" }).trim();

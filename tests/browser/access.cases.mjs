// access.cases.mjs - "Who accessed my data" (gateway/web/access.js) in the
// browser, for portal.test.mjs: a judge looks the person up with a purpose
// (judge_lookup.sh), the person signs in and finds the lookup on the account
// page in Azerbaijani and in English, downloads its proof, and the proof
// checks with `darvaza audit check-proof` and tools/check_audit_proof.py;
// axe-core finds no violation on the page in either language.

import { execFile, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export function accessCases(test, h) {
  const { check, newPage, open, visible, shot, totp, HERE, STATE, GW, BUILD_DIR, SHOTS, AZ, EN } = h;
  const ACC = JSON.parse(JSON.stringify((h.ACCESS_STRINGS)));
  const purpose = `case 2-${crypto.randomInt(1000, 9999)}/2026`;
  let page = null;
  let judge = "";
  let judgeName = "";

  async function axeClean(p, what) {
    const src = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
    // Through the debugging protocol, not a <script>: the page's CSP (no
    // inline scripts) stays as it is.
    await p.evaluate(src);
    const r = await p.evaluate(async () => {
      const res = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] });
      return res.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    });
    check(r.length === 0, `axe-core: no violation (${what})`, r);
  }

  async function row() {
    // The proof may wait for the next signed head: the page asks again.
    const r = page.locator("tr.access-row", { hasText: purpose });
    await r.locator("button.access-proof").waitFor({ state: "visible", timeout: 30000 });
    return r;
  }

  test("who accessed my data (az): a judge's lookup with its purpose is listed, its proof downloads and checks", async () => {
    const person = h.P.access;
    check(person, "people.json has a third registered person with a TOTP secret");
    const r = await new Promise((resolve) => execFile(path.join(HERE, "judge_lookup.sh"),
      [STATE, GW, BUILD_DIR, person.fin, purpose], { timeout: 90000, encoding: "utf8" },
      (err, stdout, stderr) => resolve({ err, out: stdout.trim(), errout: stderr })));
    check(!r.err, "a judge looks the person up (tests/browser/judge_lookup.sh)", r.errout);
    judge = r.out;
    const cards = JSON.parse(fs.readFileSync(path.join(STATE, "cards/cards.json"), "utf8"));
    judgeName = (cards.find((c) => c.fin === judge && c.kind === "judge") || {}).name || "";
    check(judgeName !== "", "cards.json names the judge", judge);
    page = (await newPage()).page;
    await open(page);
    await page.fill("#pw-fin", person.fin);
    await page.fill("#pw-password", person.password);
    await page.fill("#pw-otp", totp(person.totp_secret));
    await page.click("#pw-submit");
    await visible(page, "#view-account");
    await visible(page, "#access-card");
    check((await page.locator("#access-h").innerText()) === ACC.az["access.title"], "the card's title in Azerbaijani");
    const tr = await row();
    const cells = await tr.locator("td").allInnerTexts();
    check(cells[1].includes(judge) && cells[1].includes(ACC.az["access.role.judge"]), "who: the judge's FIN and role", cells);
    check(cells[1].startsWith(judgeName + ", "), "who: the judge's name as the card's certificate gives it", [judgeName, cells]);
    check(cells[2].includes("address"), "which data: the released fields", cells);
    check(cells[3] === purpose, "the purpose", cells);
    check(cells[4] === ACC.az["access.allow"], "the decision", cells);
    await shot(page, "access-az");
    const [dl] = await Promise.all([page.waitForEvent("download"), tr.locator("button.access-proof").click()]);
    const file = path.join(SHOTS, "access-proof.json");
    await dl.saveAs(file);
    const proof = JSON.parse(fs.readFileSync(file, "utf8"));
    check(proof.type === "darvaza-audit-inclusion" && JSON.parse(proof.line).pur === purpose &&
      JSON.parse(proof.line).name === judgeName,
      "the download is the inclusion proof of the lookup's audit line (the judge's name in it)", proof);
    const jwks = path.join(SHOTS, "jwks.json");
    fs.writeFileSync(jwks, execFileSync("curl", ["-sS", "--max-time", "10", "--cacert",
      path.join(STATE, "certs/root.pem"), GW + "/.well-known/jwks.json"]));
    const out = execFileSync(path.join(BUILD_DIR, "darvaza"), ["audit", "check-proof", file, "--jwks", jwks],
      { encoding: "utf8" });
    check(/^valid: line seq \d+ is in the audit history/.test(out), "darvaza audit check-proof: valid", out);
    await axeClean(page, "az");
  });

  test("who accessed my data (en): the same list in English, axe-core clean", async () => {
    check(page, "the Azerbaijani case signed in");
    await page.click('.lang-btn[data-lang="en"]');
    await page.waitForFunction(() => document.documentElement.lang === "en");
    check((await page.locator("#access-h").innerText()) === ACC.en["access.title"], "the card's title in English");
    const cells = await (await row()).locator("td").allInnerTexts();
    check(cells[4] === ACC.en["access.allow"] && cells[1].includes(ACC.en["access.role.judge"]),
      "decision and role in English", cells);
    check((await page.locator("table.access caption").innerText()) === ACC.en["access.caption"], "the caption in English");
    await shot(page, "access-en");
    await axeClean(page, "en");
    await page.click('.lang-btn[data-lang="az"]');
    await page.context().close();
  });
}

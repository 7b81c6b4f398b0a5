// access.js - "Who accessed my data" on the account page: GET /api/my/access
// (docs/api.md), newest first, paged, each entry's inclusion proof offered
// as a JSON download (docs/transparency.md).  Self-contained: it adds its
// texts to i18n.js's STRINGS before app.js applies them, follows the
// account view's visibility and the page's language, and never reads the
// session token (the cookie is HttpOnly).

import { STRINGS } from "./i18n.js";
import { $, el, lang, t } from "./dom.js";
import { ACCESS_STRINGS } from "./access_i18n.js";

for (const l of Object.keys(ACCESS_STRINGS)) Object.assign(STRINGS[l], ACCESS_STRINGS[l]);

const PAGE = 20;
let entries = [];
let next = 0;       // the cursor of the next page, 0: none
let loading = false;
let failed = null;  // the problem code of the last failure
let pendingTimer = 0;

async function load(more) {
  if (loading) return;
  loading = true;
  $("access-list").setAttribute("aria-busy", "true");
  const q = "?limit=" + PAGE + (more && next ? "&before=" + next : "");
  try {
    const res = await fetch("/api/my/access" + q, { headers: { accept: "application/json" },
      credentials: "same-origin", cache: "no-store" });
    const data = await res.json().catch(() => null);
    if (!res.ok || !data || !Array.isArray(data.entries)) {
      failed = (data && typeof data.code === "string") ? data.code : "unknown";
    } else {
      failed = null;
      entries = more ? entries.concat(data.entries) : data.entries;
      next = data.next_before || 0;
    }
  } catch (e) {
    failed = "unknown";
  }
  loading = false;
  render();
  // A proof still pending (no signed head covers it yet) comes with the
  // next head: ask again shortly, once.
  clearTimeout(pendingTimer);
  if (!failed && entries.some((e) => e.proof_status === "pending"))
    pendingTimer = setTimeout(() => load(false), 3000);
}

function when(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toLocaleString(lang() === "az" ? "az-Latn-AZ" : "en-GB",
    { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function who(e) {
  if (!e.actor || e.actor.kind !== "person")
    return t(e.actor && e.actor.kind === "unknown" ? "access.unknown" : "access.system") +
      (e.service ? " — " + e.service : "");
  const role = e.actor.role ? (STRINGS[lang()]["access.role." + e.actor.role] ? t("access.role." + e.actor.role) : e.actor.role) : "";
  // The name the audit line holds (as it was at the time); lines written
  // before names were recorded, and password sign-ins, have none.
  const name = e.actor.name ? e.actor.name : t("access.name.none");
  return name + ", " + e.actor.fin + (role ? ", " + role : "") + (e.service ? " — " + e.service : "");
}

function download(e) {
  const blob = new Blob([JSON.stringify(e.proof, null, 1) + "\n"], { type: "application/json" });
  const a = el("a", { href: URL.createObjectURL(blob), download: `audit-proof-${e.instance}-${e.seq}.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function proofCell(e) {
  if (e.proof_status === "ok" && e.proof) {
    // The visible words first, then which entry (for screen readers).
    const b = el("button", { type: "button", class: "btn small access-proof", "data-seq": String(e.seq) },
      t("access.proof.download"), el("span", { class: "sr-only" }, " " + t("access.proof.label", { seq: e.seq })));
    b.addEventListener("click", () => download(e));
    return b;
  }
  const key = { pending: "access.proof.pending", other_instance: "access.proof.other",
    mismatch: "access.proof.mismatch" }[e.proof_status] || "access.proof.unavailable";
  return el("span", { class: "hint" }, t(key));
}

function render() {
  const box = $("access-list");
  const err = $("access-error");
  if (!box) return;
  box.replaceChildren();
  err.textContent = failed ? (STRINGS[lang()]["err." + failed] ? t("err." + failed) : t("err.unknown")) : "";
  if (loading && !entries.length) {
    box.append(el("p", { class: "hint" }, t("access.loading")));
  } else if (!failed && !entries.length) {
    box.append(el("p", { id: "access-none" }, t("access.none")));
  } else if (entries.length) {
    const head = el("tr", {}, ...["time", "who", "fields", "purpose", "decision", "proof"]
      .map((c) => el("th", { scope: "col" }, t("access.col." + c))));
    const rows = entries.map((e) => el("tr", { class: "access-row", "data-decision": e.decision },
      el("td", {}, el("time", { datetime: e.time }, when(e.time))),
      el("td", {}, who(e)),
      el("td", {}, e.fields && e.fields.length ? e.fields.join(", ") : t("access.fields.none")),
      el("td", {}, e.purpose || t("access.purpose.none")),
      el("td", {}, el("span", { class: "access-" + (e.decision === "deny" ? "deny" : "allow") },
        t(e.decision === "deny" ? "access.deny" : "access.allow"))),
      el("td", {}, proofCell(e))));
    box.append(el("div", { class: "access-scroll", tabindex: "0", role: "region", "aria-label": t("access.caption") },
      el("table", { class: "access" }, el("caption", {}, t("access.caption")), el("thead", {}, head),
        el("tbody", {}, ...rows))));
    box.append(el("p", { class: "hint" }, t("access.check")));
    if (next) {
      const more = el("button", { type: "button", class: "btn", id: "access-more" }, t("access.more"));
      more.addEventListener("click", () => load(true));
      box.append(more);
    }
  }
  box.setAttribute("aria-busy", String(loading));
}

function start() {
  const view = $("view-account");
  if (!view || !$("access-list")) return;
  // Loaded whenever the account page is shown (after a sign-in, a reload).
  new MutationObserver(() => {
    if (!view.hidden) { entries = []; next = 0; load(false); }
    else clearTimeout(pendingTimer);
  }).observe(view, { attributes: true, attributeFilter: ["hidden"] });
  new MutationObserver(render).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  if (!view.hidden) load(false);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();

// workspace.js - the judge's workspace on the account page (docs/portal.md
// "The judge's workspace"): look a party up in the population registry for
// a case, compose a court notice, sign its exact bytes with the judge's
// mobile signature (POST /sign/mobile) or with a CAdES file made by
// `darvaza-card sign`, file it (POST /api/court/notices) and follow the
// notices filed (GET /api/court/filed).  Shown only when the session's role
// is judge; the gateway decides anyway (policies/court.yaml, registry.yaml).
// Like access.js (helpers from dom.js): its texts join i18n.js's STRINGS before
// app.js applies them; it follows the account view and the page's language;
// it never reads the session token (the cookie is HttpOnly).

import { STRINGS } from "./i18n.js";
import { $, api, el, lang, t } from "./dom.js";
import { WORKSPACE_STRINGS } from "./workspace_i18n.js";

for (const l of Object.keys(WORKSPACE_STRINGS)) Object.assign(STRINGS[l], WORKSPACE_STRINGS[l]);

// Azerbaijan keeps +04:00 all year: the hearing's date and time as typed
// are local time there.
const AZ_OFFSET = "+04:00";
const FIN_RE = /^[0-9A-Z]{7}$/;
const MOBILE_WAIT_S = 20;     // per long poll of /sign/mobile/{id}
const MOBILE_MAX_POLLS = 9;   // the MSSP gives up after its user timeout anyway

const state = {
  session: null,
  doc: null,          // Uint8Array: the notice exactly as signed and filed
  docCase: "",
  docParty: "",
  sha: "",
  signature: "",      // base64 CMS (detached CAdES) over doc
  signedBy: "",       // "mobile" | "file"
  lookup: null,       // the last lookup's record
  lookupErr: null,
  filed: [],
  filedErr: null,
  filedAt: null,      // the id of the notice just filed
  signing: null,      // AbortController of a mobile signing in progress
};

// The API call (dom.js) with its answer's body; problems throw ApiError.
async function call(method, path, { body, headers, signal } = {}) {
  return (await api(method, path, body, signal, headers)).data;
}

// The words for a problem code: the workspace's own, the portal's, or the
// code itself; the code is always shown too (an operator asks for it).
function problemText(code) {
  const s = STRINGS[lang()];
  const words = s["ws.err." + code] ?? s["err." + code] ?? s["mob." + code] ?? t("ws.err.other");
  return `${words} (${code})`;
}

function b64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
async function sha256Hex(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}
const normFin = (v) => String(v || "").trim().toUpperCase();
const fileName = () => "notice-" + state.docCase.replace(/[^0-9A-Za-z_-]+/g, "_") + ".json";
function fmtTime(v) {
  const d = typeof v === "number" ? new Date(v * 1000) : new Date(v);
  if (isNaN(d)) return String(v);
  return d.toLocaleString(lang() === "az" ? "az-Latn-AZ" : "en-GB",
    { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}
// The messages on screen, kept as what they say (key and values, or a
// problem code) so that a change of language redraws them.
const messages = new Map();
function setError(id, code) {
  messages.set(id, code ? { code } : null);
  $(id).textContent = code ? problemText(code) : "";
}
function say(id, key, vars) {
  messages.set(id, key ? { key, vars } : null);
  $(id).textContent = key ? t(key, vars) : "";
}
function redrawMessages() {
  for (const [id, m] of messages) $(id).textContent = !m ? "" : m.code ? problemText(m.code) : t(m.key, m.vars);
}
function invalid(input, bad) {
  if (bad) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  return bad;
}

// ---------------------------------------------------------------- (a) lookup

async function lookup(ev) {
  ev.preventDefault();
  const fin = normFin($("ws-lookup-fin").value);
  const purpose = $("ws-lookup-case").value.trim();
  const badFin = invalid($("ws-lookup-fin"), !FIN_RE.test(fin));
  const badCase = invalid($("ws-lookup-case"), !purpose);
  state.lookup = null;
  state.lookupErr = badFin ? "ws_bad_fin" : badCase ? "ws_no_case" : null;
  renderLookup();
  if (state.lookupErr) {
    $(badFin ? "ws-lookup-fin" : "ws-lookup-case").focus();
    return;
  }
  $("ws-lookup-submit").disabled = true;
  try {
    state.lookup = await call("GET", "/api/registry/persons/" + encodeURIComponent(fin),
      { headers: { "darvaza-purpose": purpose } });
    // What a judge looks up is usually who the notice goes to.
    if (!$("ws-party").value) $("ws-party").value = fin;
    if (!$("ws-case").value) $("ws-case").value = purpose;
  } catch (e) {
    state.lookupErr = e.code || "unknown";
  }
  $("ws-lookup-submit").disabled = false;
  renderLookup();
}

function fieldText(v) {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) return v.map(fieldText).join(", ");
  if (typeof v === "object") return Object.values(v).map(fieldText).filter(Boolean).join(", ");
  return String(v);
}

function renderLookup() {
  setError("ws-lookup-error", state.lookupErr);
  const out = $("ws-lookup-result");
  out.replaceChildren();
  if (!state.lookup) return;
  const rows = [];
  for (const k of ["fin", "name", "surname", "patronymic", "birth_date", "address", "phones"]) {
    if (state.lookup[k] === undefined) continue;
    rows.push(el("dt", {}, t("ws.field." + k)), el("dd", { "data-field": k }, fieldText(state.lookup[k])));
  }
  out.append(el("h4", { class: "ws-sub" }, t("ws.lookup.found")), el("dl", { class: "kv" }, ...rows),
    el("p", { class: "hint" }, t("ws.lookup.logged")));
}

// ---------------------------------------------------------------- (b) compose

async function compose(ev) {
  ev.preventDefault();
  const v = (id) => $(id).value.trim();
  const party = normFin(v("ws-party"));
  const checks = [["ws-case", !v("ws-case")], ["ws-party", !FIN_RE.test(party)], ["ws-court", !v("ws-court")],
    ["ws-date", !/^\d{4}-\d{2}-\d{2}$/.test(v("ws-date"))], ["ws-time", !/^\d{2}:\d{2}$/.test(v("ws-time"))],
    ["ws-place", !v("ws-place")], ["ws-text", !v("ws-text")]];
  let first = null;
  for (const [id, bad] of checks) if (invalid($(id), bad) && !first) first = id;
  setError("ws-compose-error", first ? "ws_incomplete" : null);
  if (first) {
    $(first).focus();
    return;
  }
  // The document: one JSON object, keys in this order, UTF-8.  These bytes
  // are what is signed, what the court keeps and what the party reads.
  const doc = { case: v("ws-case"), party, court: v("ws-court"),
    hearing: `${v("ws-date")}T${v("ws-time")}:00${AZ_OFFSET}`, place: v("ws-place"), text: v("ws-text") };
  state.doc = new TextEncoder().encode(JSON.stringify(doc));
  state.docCase = doc.case;
  state.docParty = party;
  state.sha = await sha256Hex(state.doc);
  state.signature = "";
  state.signedBy = "";
  state.filedAt = null;
  if (state.signing) state.signing.abort();
  renderDoc();
  $("ws-doc-h").focus();
}

function renderDoc() {
  const box = $("ws-doc");
  box.hidden = !state.doc;
  if (!state.doc) return;
  $("ws-doc-json").textContent = new TextDecoder().decode(state.doc);
  $("ws-doc-sha").textContent = state.sha;
  const a = $("ws-doc-download");
  if (a.href) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(new Blob([state.doc], { type: "application/json" }));
  a.download = fileName();
  a.textContent = t("ws.doc.download", { file: fileName() });
  $("ws-doc-cmd").textContent = `darvaza-card sign ${fileName()} -o ${fileName()}.p7s`;
  renderSigned();
}

// ---------------------------------------------------------------- (c) sign

async function mobileSign() {
  const phone = $("ws-mob-phone").value.replace(/[\s-]/g, "");
  if (invalid($("ws-mob-phone"), !/^\+[1-9][0-9]{6,14}$/.test(phone))) {
    setError("ws-sign-error", "ws_bad_phone");
    $("ws-mob-phone").focus();
    return;
  }
  setError("ws-sign-error", null);
  const ctl = new AbortController();
  if (state.signing) state.signing.abort();
  state.signing = ctl;
  const doc = state.doc;
  $("ws-mob-sign").disabled = true;
  $("ws-mob-wait").hidden = false;
  $("ws-mob-code").textContent = "";
  say("ws-sign-status", "ws.sign.sending");
  try {
    const start = await call("POST", "/sign/mobile",
      { body: { phone, fin: state.session.fin, document: b64(doc) }, signal: ctl.signal });
    $("ws-mob-code").textContent = start.verification_code || "";
    say("ws-sign-status", "ws.sign.waiting", { code: start.verification_code || "" });
    let r = { state: "pending" };
    for (let i = 0; i < MOBILE_MAX_POLLS && r.state === "pending"; i++)
      r = await call("GET", `${start.poll}?wait=${MOBILE_WAIT_S}`, { signal: ctl.signal });
    if (r.state === "complete" && typeof r.signature === "string" && doc === state.doc) {
      state.signature = r.signature;
      state.signedBy = "mobile";
      say("ws-sign-status", "ws.sign.done.mobile");
    } else {
      setError("ws-sign-error", r.state === "failed" ? r.result || "unknown" : "timeout");
      say("ws-sign-status", null);
    }
  } catch (e) {
    if (!ctl.signal.aborted) {
      setError("ws-sign-error", e.code || "unknown");
      say("ws-sign-status", null);
    }
  }
  if (state.signing === ctl) state.signing = null;
  $("ws-mob-sign").disabled = false;
  $("ws-mob-wait").hidden = true;
  renderSigned();
}

async function uploadSignature() {
  const f = $("ws-p7s").files && $("ws-p7s").files[0];
  if (!f) return;
  setError("ws-sign-error", null);
  if (f.size > 256 * 1024) {
    setError("ws-sign-error", "ws_file_too_big");
    return;
  }
  let bytes = new Uint8Array(await f.arrayBuffer());
  // A PEM file (openssl cms -outform PEM) is taken too: its base64 body.
  const text = new TextDecoder("latin1").decode(bytes);
  const pem = /-----BEGIN (?:CMS|PKCS7)-----([\s\S]*?)-----END/.exec(text);
  state.signature = pem ? pem[1].replace(/\s+/g, "") : b64(bytes);
  bytes = null;
  state.signedBy = "file";
  say("ws-sign-status", "ws.sign.done.file", { file: f.name });
  renderSigned();
}

function renderSigned() {
  $("ws-file").disabled = !(state.doc && state.signature);
  $("ws-signed").textContent = state.signature
    ? t(state.signedBy === "mobile" ? "ws.signed.mobile" : "ws.signed.file") : t("ws.signed.none");
}

// ---------------------------------------------------------------- (d) file

async function fileNotice() {
  if (!state.doc || !state.signature) return;
  setError("ws-file-error", null);
  $("ws-file").disabled = true;
  say("ws-file-status", "ws.file.sending");
  try {
    const r = await call("POST", "/api/court/notices", {
      headers: { "darvaza-purpose": state.docCase },
      body: { document: b64(state.doc), signature: state.signature, party: state.docParty } });
    state.filedAt = r && r.id !== undefined ? r.id : null;
    say("ws-file-status", "ws.file.done", { id: state.filedAt ?? "" });
    loadFiled();
  } catch (e) {
    say("ws-file-status", null);
    setError("ws-file-error", e.code || "unknown");
    $("ws-file").disabled = false;
  }
}

// ---------------------------------------------------------------- (e) filed

async function loadFiled() {
  $("ws-filed").setAttribute("aria-busy", "true");
  try {
    const r = await call("GET", "/api/court/filed");
    state.filed = Array.isArray(r && r.notices) ? r.notices : [];
    state.filedErr = null;
  } catch (e) {
    state.filedErr = e.code || "unknown";
  }
  renderFiled();
}

function deliveryText(n) {
  const d = Array.isArray(n.deliveries) ? n.deliveries : [];
  if (!d.length) return t("ws.delivery.none");
  return d.map((x) => `${x.channel || ""} ${x.address || ""}: ${t("ws.delivery." + x.state) === "ws.delivery." + x.state ? x.state : t("ws.delivery." + x.state)}`.trim()).join("; ");
}

function renderFiled() {
  const box = $("ws-filed");
  setError("ws-filed-error", state.filedErr);
  box.replaceChildren();
  if (!state.filedErr && !state.filed.length) {
    box.append(el("p", { id: "ws-filed-none" }, t("ws.filed.none")));
  } else if (state.filed.length) {
    const head = el("tr", {}, ...["case", "party", "hearing", "filed", "delivery", "read"]
      .map((c) => el("th", { scope: "col" }, t("ws.col." + c))));
    const rows = state.filed.map((n) => {
      let doc = {};
      try {
        doc = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(n.document || ""), (c) => c.charCodeAt(0))));
      } catch (e) {
        doc = {};
      }
      return el("tr", { class: "ws-row", "data-id": String(n.id), "data-read": n.read_at ? "yes" : "no" },
        el("td", {}, String(n.case || "")), el("td", { class: "mono" }, String(n.party_fin || "")),
        el("td", {}, doc && doc.hearing ? fmtTime(doc.hearing) : ""),
        el("td", {}, n.received_at ? fmtTime(n.received_at) : ""),
        el("td", {}, deliveryText(n)),
        el("td", { class: n.read_at ? "ws-read" : "ws-unread" },
          n.read_at ? t("ws.read.at", { time: fmtTime(n.read_at) }) : t("ws.read.not")));
    });
    box.append(el("div", { class: "access-scroll", tabindex: "0", role: "region", "aria-label": t("ws.filed.caption") },
      el("table", { class: "access" }, el("caption", {}, t("ws.filed.caption")), el("thead", {}, head),
        el("tbody", {}, ...rows))));
  }
  box.setAttribute("aria-busy", "false");
}

// ---------------------------------------------------------------- showing it

async function show() {
  const card = $("ws");
  try {
    state.session = await call("GET", "/auth/session");
  } catch (e) {
    state.session = null;
  }
  card.hidden = !(state.session && state.session.role === "judge");
  if (card.hidden) return;
  loadFiled();
  // The judge's own number for the mobile signature, when the registry has one.
  if (!$("ws-mob-phone").value) {
    call("GET", "/api/registry/me/phones").then((r) => {
      const p = r && Array.isArray(r.phones) ? r.phones[0] : "";
      if (p && !$("ws-mob-phone").value) $("ws-mob-phone").value = typeof p === "string" ? p : p.number || "";
    }).catch(() => {});
  }
}

// Signed out: nothing of this judge's work stays in the page for whoever
// signs in next.
function forget() {
  $("ws").hidden = true;
  if (state.signing) state.signing.abort();
  Object.assign(state, { session: null, doc: null, docCase: "", docParty: "", sha: "", signature: "",
    signedBy: "", lookup: null, lookupErr: null, filed: [], filedErr: null, filedAt: null, signing: null });
  for (const f of ["ws-lookup-form", "ws-compose-form"]) $(f).reset();
  $("ws-mob-phone").value = "";
  $("ws-p7s").value = "";
  $("ws-doc").hidden = true;
  for (const id of ["ws-lookup-result", "ws-filed"]) $(id).replaceChildren();
  messages.clear();
  for (const id of ["ws-sign-status", "ws-file-status", "ws-signed", "ws-lookup-error", "ws-compose-error",
    "ws-sign-error", "ws-file-error", "ws-filed-error"]) $(id).textContent = "";
}

function rerender() {
  if ($("ws").hidden) return;
  renderLookup();
  renderDoc();
  renderFiled();
  redrawMessages();
}

function start() {
  const view = $("view-account");
  if (!view || !$("ws")) return;
  $("ws-lookup-form").addEventListener("submit", lookup);
  $("ws-compose-form").addEventListener("submit", compose);
  $("ws-mob-sign").addEventListener("click", mobileSign);
  $("ws-p7s").addEventListener("change", uploadSignature);
  $("ws-file").addEventListener("click", fileNotice);
  $("ws-filed-refresh").addEventListener("click", loadFiled);
  new MutationObserver(() => {
    if (!view.hidden) show();
    else forget();
  }).observe(view, { attributes: true, attributeFilter: ["hidden"] });
  new MutationObserver(rerender).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  if (!view.hidden) show();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();

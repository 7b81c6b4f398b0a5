// app.js - the portal page: sign in (FIN + password + code, mobile
// signature, QR code, e-signature card), registration, and the signed-in
// page.  Plain ES2020 module, no framework, no external resources; it only
// talks to its own origin (the CSP allows nothing else).  The session token
// lives in the HttpOnly cookie the gateway sets: this script never stores it.

import { STRINGS, LANGS } from "./i18n.js";
import { api, ApiError } from "./dom.js";

const LANG_KEY = "darvaza.lang";
const POLL_WAIT = 20;              // seconds per long-poll
const MOBILE_LIMIT_MS = 5 * 60e3;  // give up on a mobile request after this
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- i18n

let lang = storedLang();

function storedLang() {
  try {
    const l = localStorage.getItem(LANG_KEY);
    if (LANGS.includes(l)) return l;
  } catch (e) { /* storage blocked: default */ }
  return "az";
}

function t(key, vars) {
  let s = STRINGS[lang][key] ?? STRINGS.az[key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

// A message element keeps its key so a language switch can re-render it.
function setMsg(el, key, vars, ref) {
  if (!key) {
    delete el.dataset.msgKey;
    delete el.dataset.msgVars;
    delete el.dataset.msgRef;
    el.textContent = "";
    return;
  }
  el.dataset.msgKey = key;
  el.dataset.msgVars = vars ? JSON.stringify(vars) : "";
  if (ref) el.dataset.msgRef = ref; else delete el.dataset.msgRef;
  renderMsg(el);
}

function renderMsg(el) {
  const vars = el.dataset.msgVars ? JSON.parse(el.dataset.msgVars) : undefined;
  el.textContent = t(el.dataset.msgKey, vars);
  if (el.dataset.msgRef) {
    const r = document.createElement("span");
    r.className = "ref";
    r.textContent = t("err.ref", { id: el.dataset.msgRef });
    el.appendChild(r);
  }
}

function applyLang() {
  document.documentElement.lang = lang;
  document.title = t("doc.title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]"))
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of document.querySelectorAll("[data-i18n-alt]")) el.alt = t(el.dataset.i18nAlt);
  for (const el of document.querySelectorAll("[data-msg-key]")) renderMsg(el);
  for (const b of document.querySelectorAll(".lang-btn"))
    b.setAttribute("aria-pressed", String(b.dataset.lang === lang));
  if (!$("view-account").hidden) renderAccount();
}

function setLang(l) {
  if (!LANGS.includes(l)) return;
  lang = l;
  try { localStorage.setItem(LANG_KEY, l); } catch (e) { /* not remembered */ }
  applyLang();
}

// ---------------------------------------------------------------- API

const aborted = (e) => e && e.name === "AbortError";
const transient = (e) => e instanceof ApiError &&
  (e.code === "network" || e.code === "service_unavailable" || e.status === 502 || e.status === 504);
const sleep = (ms, signal) => new Promise((resolve) => {
  const tm = setTimeout(resolve, ms);
  if (signal) signal.addEventListener("abort", () => { clearTimeout(tm); resolve(); }, { once: true });
});

// The message for an error: a key of i18n.js and its variables.
function errorMsg(e) {
  if (!(e instanceof ApiError)) return ["err.unknown"];
  if (e.code === "network") return ["err.network"];
  if (e.code === "locked") {
    const s = parseInt(e.retryAfter, 10);
    return s > 0 ? ["err.locked", { minutes: Math.max(1, Math.ceil(s / 60)) }] : ["err.locked.soon"];
  }
  if (("err." + e.code) in STRINGS.az) return ["err." + e.code];
  return ["err.unknown"];
}

function showError(el, e) {
  const [key, vars] = errorMsg(e);
  // A reference helps support find the request in the log when it is our fault.
  const ref = e instanceof ApiError && (e.status >= 500 || key === "err.unknown") ? e.rid : null;
  setMsg(el, key, vars, ref);
}

// Which field an error is about (focus it, mark it invalid).
const FIELD_OF = {
  invalid_fin: "fin", invalid_document: "document", weak_password: "password",
  invalid_phone: "phone", otp_required: "otp", bad_credentials: "password",
  code_invalid: "code", code_expired: "code",
};

function markInvalid(form, name) {
  for (const i of form.querySelectorAll("input")) i.removeAttribute("aria-invalid");
  const input = name && form.elements[name];
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
    if (input.select) input.select();
  }
}

function busy(form, on) {
  form.setAttribute("aria-busy", String(on));
  for (const b of form.querySelectorAll("button")) b.disabled = on;
}

// ---------------------------------------------------------------- input

const normFin = (s) => s.trim().toUpperCase();
const finOk = (s) => /^[0-9A-Z]{7}$/.test(s);

// "+994 50 123-45-67", "050 123 45 67", "994501234567" -> "+994501234567"
function normPhone(s) {
  let d = s.replace(/[\s\-().]/g, "");
  if (/^0\d{9}$/.test(d)) d = "+994" + d.slice(1);
  else if (/^994\d{9}$/.test(d)) d = "+" + d;
  else if (/^00994\d{9}$/.test(d)) d = "+" + d.slice(2);
  return d;
}

function svgData(svg) {
  const bytes = new TextEncoder().encode(svg);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return "data:image/svg+xml;base64," + btoa(bin);
}

// ---------------------------------------------------------------- views

let session = null;      // the session answer, without the token
let record = null;       // GET /api/registry/me
let recordError = null;
let notices = null;      // array, or null while loading
let noticesError = null;
const VIEWS = ["login", "register", "account", "consent"];

function show(view, focus) {
  for (const v of VIEWS) $("view-" + v).hidden = v !== view;
  if (view !== "login") qrStop();
  else if (selectedTab() === "tab-qr") qrStart();
  if (focus) {
    const h = $("view-" + view).querySelector("h1");
    if (h) h.focus();
  }
}

function flash(key) {
  setMsg($("flash"), key);
}

// Go to a view by its address; the hashchange handler routes, or we do
// when the address is already that.
function go(hash) {
  if (location.hash === hash || (hash === "#/" && location.hash === "")) route();
  else location.hash = hash;
}

async function route(focus = true) {
  const h = location.hash;
  if (h === "#/register") {
    show("register", focus);
    return;
  }
  if (h === "#/account") {
    if (!session) {
      try {
        session = (await api("GET", "/auth/session")).data;
      } catch (e) {
        session = null;
      }
    }
    if (session) {
      show("account", focus);
      loadAccount();
      return;
    }
    history.replaceState(null, "", "#/");
  }
  show("login", focus);
}

function signedIn(data) {
  if (data) delete data.token; // the cookie carries it; never keep it here
  if (OIDC.id) { // an e-service asked for this login: back to it
    location.assign("/authorize/resume?id=" + encodeURIComponent(OIDC.id));
    return;
  }
  session = data;
  record = recordError = notices = noticesError = null;
  for (const id of ["pw-password", "pw-otp"]) $(id).value = "";
  flash(null);
  mobileReset();
  selectTab($("tab-password"), false);
  go("#/account");
}

// ---------------------------------------------------------------- tabs

const allTabs = () => Array.from(document.querySelectorAll('[role="tab"]'));
// The tabs offered (an e-service asking for "high" hides the password one).
const tabs = () => allTabs().filter((b) => !b.hidden);
const selectedTab = () => {
  const s = tabs().find((b) => b.getAttribute("aria-selected") === "true");
  return s ? s.id : "tab-password";
};

function selectTab(tab, focus) {
  for (const b of allTabs()) {
    const on = b === tab;
    b.setAttribute("aria-selected", String(on));
    b.tabIndex = on ? 0 : -1;
    $(b.getAttribute("aria-controls")).hidden = !on;
  }
  if (focus) tab.focus();
  if (tab.id === "tab-qr") qrStart();
  else qrStop();
}

function tabKeys(e) {
  const list = tabs();
  const i = list.indexOf(e.currentTarget);
  let j = null;
  if (e.key === "ArrowRight") j = (i + 1) % list.length;
  else if (e.key === "ArrowLeft") j = (i - 1 + list.length) % list.length;
  else if (e.key === "Home") j = 0;
  else if (e.key === "End") j = list.length - 1;
  if (j === null) return;
  e.preventDefault();
  selectTab(list[j], true);
}

// ---------------------------------------------------------------- password

async function onPassword(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const err = $("pw-error");
  const fin = normFin($("pw-fin").value);
  const password = $("pw-password").value;
  const otp = $("pw-otp").value.replace(/\s/g, "");
  setMsg(err, null);
  $("pw-fin").value = fin;
  if (!finOk(fin)) {
    setMsg(err, "err.invalid_fin");
    markInvalid(form, "fin");
    return;
  }
  if (!password) {
    setMsg(err, "err.invalid_request");
    markInvalid(form, "password");
    return;
  }
  if (otp && !/^\d{6}$/.test(otp)) {
    setMsg(err, "err.bad_credentials");
    markInvalid(form, "otp");
    return;
  }
  const body = { fin, password };
  if (otp) body.otp = otp;
  busy(form, true);
  try {
    const r = await api("POST", "/auth/password", body);
    markInvalid(form, null);
    signedIn(r.data);
  } catch (x) {
    if (x instanceof ApiError && x.code === "otp_required") {
      setMsg(err, "pw.otp_now");
      markInvalid(form, "otp");
    } else {
      showError(err, x);
      $("pw-otp").value = ""; // a code is good once
      markInvalid(form, x instanceof ApiError ? FIELD_OF[x.code] : null);
    }
  } finally {
    busy(form, false);
  }
}

// ---------------------------------------------------------------- mobile

let mobileCtl = null;

function mobileReset() {
  if (mobileCtl) mobileCtl.abort();
  mobileCtl = null;
  $("form-mobile").hidden = false;
  $("mob-wait").hidden = true;
  $("mob-code").textContent = "";
}

async function onMobile(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const err = $("mob-error");
  const phone = normPhone($("mob-phone").value);
  const fin = normFin($("mob-fin").value);
  setMsg(err, null);
  $("mob-fin").value = fin;
  if (!/^\+994\d{9}$/.test(phone)) {
    setMsg(err, "err.invalid_phone");
    markInvalid(form, "phone");
    return;
  }
  $("mob-phone").value = phone;
  if (!finOk(fin)) {
    setMsg(err, "err.invalid_fin");
    markInvalid(form, "fin");
    return;
  }
  markInvalid(form, null);
  busy(form, true);
  let start;
  try {
    start = (await api("POST", "/auth/mobile", { phone, fin })).data;
  } catch (x) {
    showError(err, x);
    markInvalid(form, x instanceof ApiError ? FIELD_OF[x.code] : null);
    return;
  } finally {
    busy(form, false);
  }
  const ctl = new AbortController();
  mobileCtl = ctl;
  form.hidden = true;
  $("mob-code").textContent = start.verification_code || "";
  $("mob-wait").hidden = false;
  $("mob-cancel").focus();
  const path = typeof start.poll === "string" && start.poll.startsWith("/auth/mobile/")
    ? start.poll : "/auth/mobile/" + encodeURIComponent(start.id);
  const until = Date.now() + MOBILE_LIMIT_MS;
  let hiccups = 0;
  while (!ctl.signal.aborted) {
    if (Date.now() > until) {
      mobileFailed("mob.timeout");
      return;
    }
    let r;
    try {
      r = await api("GET", path + "?wait=" + POLL_WAIT, undefined, ctl.signal);
    } catch (x) {
      if (aborted(x) || ctl.signal.aborted) return;
      if (transient(x) && ++hiccups < 5) {
        await sleep(1500, ctl.signal);
        continue;
      }
      mobileReset();
      showError(err, x);
      return;
    }
    const st = r.data && r.data.state;
    if (st === "complete") {
      mobileCtl = null;
      signedIn(r.data);
      return;
    }
    if (st === "failed") {
      const key = "mob." + r.data.result;
      mobileFailed(key in STRINGS.az ? key : "mob.failed");
      return;
    }
  }
}

function mobileFailed(key) {
  mobileReset();
  setMsg($("mob-error"), key);
  $("mob-submit").focus();
}

// ---------------------------------------------------------------- QR

let qr = null; // {ctl, timer}

function qrStop() {
  if (!qr) return;
  qr.ctl.abort();
  clearTimeout(qr.timer);
  qr = null;
}

function qrStatus(key, spin) {
  const el = $("qr-status");
  setMsg(el, key);
  if (key && spin) {
    const s = document.createElement("span");
    s.className = "spinner";
    s.setAttribute("aria-hidden", "true");
    el.prepend(s);
  }
}

function qrEnd(key, e) {
  qrStop();
  $("qr-img").hidden = true;
  $("qr-img").removeAttribute("src");
  qrStatus(key || null);
  if (e) showError($("qr-error"), e);
  $("qr-new").hidden = false;
}

async function qrStart() {
  if (qr) return; // already running
  const ctl = new AbortController();
  const st = { ctl, timer: 0 };
  qr = st;
  const img = $("qr-img");
  setMsg($("qr-error"), null);
  $("qr-new").hidden = true;
  img.hidden = true;
  qrStatus("qr.starting", true);
  let id;
  try {
    id = (await api("POST", "/auth/qr", undefined, ctl.signal)).data.id;
  } catch (x) {
    if (!ctl.signal.aborted) qrEnd(null, x);
    return;
  }
  const base = "/auth/qr/" + encodeURIComponent(id);
  let shown = false;

  const refresh = async () => {
    if (ctl.signal.aborted) return;
    let next = 1000;
    try {
      const c = (await api("GET", base + "/code", undefined, ctl.signal)).data;
      if (ctl.signal.aborted) return;
      img.src = svgData(c.svg);
      img.hidden = false;
      if (!shown) {
        shown = true;
        qrStatus("qr.waiting", true);
      }
      next = Math.min(Math.max(Number(c.refresh_ms) || 1000, 50), 1000) + 20;
    } catch (x) {
      if (ctl.signal.aborted) return;
      // 404 here also means the phone has just answered and the login took
      // the pending entry: the long poll below carries the session and
      // decides between "signed in" and "expired", so only stop showing codes.
      if (x instanceof ApiError && x.status === 404) { img.hidden = true; return; }
      if (!transient(x)) { qrEnd(null, x); return; }
    }
    st.timer = setTimeout(refresh, next);
  };
  refresh();

  let hiccups = 0;
  while (!ctl.signal.aborted) {
    let r;
    try {
      r = await api("GET", base + "?wait=" + POLL_WAIT, undefined, ctl.signal);
    } catch (x) {
      if (ctl.signal.aborted) return;
      if (x instanceof ApiError && x.status === 404) { qrEnd("qr.expired"); return; }
      if (transient(x) && ++hiccups < 5) { await sleep(1500, ctl.signal); continue; }
      qrEnd(null, x);
      return;
    }
    if (r.data && r.data.state === "complete") {
      qrStop();
      img.hidden = true;
      img.removeAttribute("src");
      qrStatus(null);
      signedIn(r.data);
      return;
    }
  }
}

// ---------------------------------------------------------------- card

// The card login of a browser goes through the card listener, another
// origin that asks for the card certificate (this origin never does): start
// here (a pre-login cookie binds the login to this browser), go there, come
// back with a one-time code in the fragment, exchange it for the session.
const CARD_OIDC_KEY = "darvaza.card.oidc";

async function onCardTls() {
  const err = $("card-error");
  const b = $("card-tls");
  setMsg(err, null);
  b.disabled = true;
  try {
    const r = await api("POST", "/auth/card/tls/start");
    // The card listener sends the browser back to "/": an e-service's
    // request (OIDC) is remembered here to be resumed after the exchange.
    try {
      if (OIDC.id) sessionStorage.setItem(CARD_OIDC_KEY, OIDC.id);
      else sessionStorage.removeItem(CARD_OIDC_KEY);
    } catch (e) { /* storage blocked: the portal's session only */ }
    location.assign(r.data.url);
  } catch (x) {
    showError(err, x);
    b.disabled = false;
  }
}

// Back from the card listener: #card-code=CODE&ref=ID or
// #card-refused=PROBLEM&ref=ID.  The fragment is dropped from the address
// bar (and history) before anything else: the code is single use anyway.
async function cardReturn() {
  const m = /^#(card-code|card-refused)=([A-Za-z0-9_-]{1,64})(?:&ref=([0-9a-f]{1,64}))?$/.exec(location.hash);
  if (!m) return false;
  history.replaceState(null, "", location.pathname + location.search);
  const err = $("card-error");
  if (m[1] === "card-refused") {
    const key = ("err." + m[2]) in STRINGS.az ? "err." + m[2] : "err.unknown";
    // The reference, as for any answer: when it is our fault or unexplained.
    const ours = /unavailable$|^internal_error$/.test(m[2]) || key === "err.unknown";
    await route(false);
    selectTab($("tab-card"), false);
    setMsg(err, key, undefined, ours ? m[3] : null);
    return true;
  }
  let oidc = null;
  try {
    oidc = sessionStorage.getItem(CARD_OIDC_KEY);
    sessionStorage.removeItem(CARD_OIDC_KEY);
  } catch (e) { /* storage blocked */ }
  try {
    const r = await api("POST", "/auth/card/tls/exchange", { code: m[2] });
    if (oidc && /^[A-Za-z0-9_-]{43}$/.test(oidc)) {
      location.assign("/authorize/resume?id=" + encodeURIComponent(oidc));
      return true;
    }
    signedIn(r.data);
  } catch (x) {
    await route(false);
    selectTab($("tab-card"), false);
    showError(err, x);
  }
  return true;
}

// ---------------------------------------------------------------- registration

let registeredFin = null;

async function onRegister(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const err = $("reg-error");
  const fin = normFin($("reg-fin").value);
  const document_ = $("reg-document").value.replace(/\s/g, "").toUpperCase();
  const password = $("reg-password").value;
  setMsg(err, null);
  $("reg-fin").value = fin;
  $("reg-document").value = document_;
  if (!finOk(fin)) {
    setMsg(err, "err.invalid_fin");
    markInvalid(form, "fin");
    return;
  }
  if (!document_) {
    setMsg(err, "err.invalid_document");
    markInvalid(form, "document");
    return;
  }
  if (!password) {
    setMsg(err, "err.weak_password");
    markInvalid(form, "password");
    return;
  }
  if (password !== $("reg-password2").value) {
    setMsg(err, "reg.mismatch");
    markInvalid(form, "password2");
    return;
  }
  busy(form, true);
  try {
    // The second step carries the code the registry's phone number got by SMS.
    const body = { fin, document: document_, password };
    const code = $("reg-code").value.replace(/\s/g, "");
    if (!$("reg-code-field").hidden && code) body.code = code;
    const r = (await api("POST", "/auth/register", body)).data;
    markInvalid(form, null);
    form.reset();
    regCodeReset();
    registeredFin = r.fin || fin;
    $("reg-qr").src = svgData(r.totp.qr_svg);
    $("reg-secret").textContent = (r.totp.secret || "").replace(/(.{4})(?=.)/g, "$1 ");
    form.hidden = true;
    $("reg-done").hidden = false;
    $("reg-done-title").focus();
  } catch (x) {
    if (x instanceof ApiError && x.code === "code_required") {
      // Step 1 done: the code went to the phone the registry holds.
      $("reg-code-field").hidden = false;
      $("reg-code").value = "";
      // With several numbers, the page says the code went to the first.
      const held = (x.problem && x.problem.phones_held) || 1;
      setMsg($("reg-code-hint"), held > 1 ? "reg.code.sent.first" : "reg.code.sent",
        { phone: (x.problem && x.problem.phone) || "", n: String(held) });
      $("reg-code").focus();
    } else {
      showError(err, x);
      markInvalid(form, x instanceof ApiError ? FIELD_OF[x.code] : null);
    }
  } finally {
    busy(form, false);
  }
}

function regCodeReset() {
  $("reg-code-field").hidden = true;
  $("reg-code").value = "";
  setMsg($("reg-code-hint"), null);
}

function registerReset() {
  $("reg-done").hidden = true;
  $("reg-qr").removeAttribute("src");
  $("reg-secret").textContent = "";
  $("form-register").hidden = false;
}

function onRegisterContinue() {
  const fin = registeredFin;
  registerReset();
  selectTab($("tab-password"), false);
  go("#/");
  if (fin) {
    $("pw-fin").value = fin;
    setTimeout(() => $("pw-password").focus(), 0);
  }
}

// ---------------------------------------------------------------- account

async function loadAccount() {
  renderAccount();
  try {
    session = (await api("GET", "/auth/session")).data;
  } catch (x) {
    if (x instanceof ApiError && x.code === "unauthenticated") {
      session = null;
      flash("err.unauthenticated");
      go("#/");
      return;
    }
  }
  renderAccount();
  loadConsents();
  const [rec, not] = await Promise.allSettled([
    api("GET", "/api/registry/me"),
    api("GET", "/api/court/my-notices"),
  ]);
  if (rec.status === "fulfilled") { record = rec.value.data || {}; recordError = null; }
  else { record = {}; recordError = rec.reason; }
  if (not.status === "fulfilled") {
    const d = not.value.data;
    notices = Array.isArray(d) ? d : (d && (d.notices || d.items)) || [];
    noticesError = null;
  } else if (not.reason instanceof ApiError && not.reason.status === 404) {
    notices = []; // the court service is not connected here: nothing to show
    noticesError = null;
  } else {
    notices = [];
    noticesError = not.reason;
  }
  renderAccount();
  loadSelfService();
}

// ------------------------------------------------- account self-service

async function loadSelfService() {
  const [ph, ss, sv] = await Promise.allSettled([
    api("GET", "/api/registry/me/phones"),
    api("GET", "/api/account/sessions"),
    api("GET", "/api/account/services"),
  ]);
  const phones = $("acc-phones");
  phones.replaceChildren();
  if (ph.status === "fulfilled") {
    setMsg($("acc-phones-error"), null);
    for (const n of (ph.value.data && ph.value.data.phones) || []) {
      const li = document.createElement("li");
      li.textContent = n;
      phones.append(li);
    }
  } else {
    showError($("acc-phones-error"), ph.reason);
  }
  if (ss.status === "fulfilled") renderSessions((ss.value.data && ss.value.data.sessions) || []);
  else showError($("acc-sessions-error"), ss.reason);
  if (sv.status === "fulfilled") renderServices((sv.value.data && sv.value.data.services) || []);
  else showError($("acc-services-error"), sv.reason);
  const high = session && session.acr === "high";
  // With a card or mobile signature the person proved who they are: no
  // current password needed, and the TOTP can be reset (lost phone).
  $("chpw-current-field").hidden = high;
  $("chpw-otp-field").hidden = high;
  $("totp-reset").disabled = !high;
  setMsg($("totp-note"), high ? "acc.totp.note" : "acc.totp.need_high");
}

function renderSessions(list) {
  const ul = $("acc-sessions");
  setMsg($("acc-sessions-error"), null);
  ul.replaceChildren();
  for (const s of list) {
    const li = document.createElement("li");
    const m = document.createElement("dl");
    m.className = "kv";
    dl(m, [
      // The list keeps the level, not the amr: a substantial password
      // session is one with its one-time code.
      [t("acc.method"), methodText({ method: s.method, amr: s.acr === "substantial" ? ["pwd", "otp"] : [] })],
      [t("acc.acr"), ("acr." + s.acr) in STRINGS.az ? t("acr." + s.acr) : s.acr],
      [t("acc.sessions.since"), fmtTime(s.created_at)],
      [t("acc.sessions.address"), s.address],
    ]);
    li.append(m);
    if (s.current) {
      const b = document.createElement("span");
      b.className = "badge substantial";
      b.textContent = t("acc.sessions.current");
      li.append(b);
    } else {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "btn";
      b.textContent = t("acc.sessions.end");
      b.addEventListener("click", async () => {
        b.disabled = true;
        try {
          await api("DELETE", `/api/account/sessions/${encodeURIComponent(s.id)}`);
          li.remove();
        } catch (x) {
          b.disabled = false;
          showError($("acc-sessions-error"), x);
        }
      });
      li.append(b);
    }
    ul.append(li);
  }
}

async function onEndAll() {
  try {
    await api("DELETE", "/api/account/sessions");
  } catch (x) {
    // Only some ended (the gateway kept this session so that the person can
    // press again): say so and show what is left, not a bare error.
    const n = x instanceof ApiError && x.problem ? x.problem.sessions_ended : undefined;
    if (typeof n === "number") {
      await loadSelfService();
      setMsg($("acc-sessions-error"), "acc.sessions.partly", { n });
    } else {
      showError($("acc-sessions-error"), x);
    }
    return;
  }
  session = null;
  record = notices = recordError = noticesError = null;
  go("#/");
  flash("acc.sessions.ended_all");
}

function renderServices(list) {
  const ul = $("acc-services");
  setMsg($("acc-services-error"), null);
  ul.replaceChildren();
  for (const s of list) {
    const li = document.createElement("li");
    const h = document.createElement("h3");
    h.textContent = `${s.service} (${s.registered_as})`;
    li.append(h);
    const always = document.createElement("p");
    always.className = "route";
    always.textContent = `${t("acc.services.always")}: ${t("acc.services.always.text")}`;
    li.append(always);
    for (const r of s.routes || []) {
      const rel = (r.releases || []).map((k) => (("rec." + k) in STRINGS.az ? t("rec." + k) : k));
      const p = document.createElement("p");
      p.className = "route";
      const c = document.createElement("code");
      c.textContent = `${(r.methods || []).join(", ")} ${r.path}`;
      p.append(c, ` — ${rel.length ? rel.join(", ") : t("acc.services.none")}`);
      li.append(p);
    }
    ul.append(li);
  }
}

// A change is made, but not every other session could be ended: one of them
// may be whoever the change was meant to shut out, so the person is told, with
// the action that ends the rest.
function warnSessionsLeft(el, r) {
  if (r && r.sessions_end_failed === true) setMsg(el, "acc.sessions.left");
}

async function onChangePassword(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const err = $("chpw-error");
  const password = $("chpw-new").value;
  setMsg(err, null);
  setMsg($("chpw-done"), null);
  if (password !== $("chpw-new2").value) {
    setMsg(err, "reg.mismatch");
    markInvalid(form, "password2");
    return;
  }
  const body = { password };
  if (!$("chpw-current-field").hidden) {
    body.current_password = $("chpw-current").value;
    body.otp = $("chpw-otp").value.replace(/\s/g, "");
  }
  busy(form, true);
  try {
    const r = (await api("POST", "/api/account/password", body)).data;
    form.reset();
    markInvalid(form, null);
    setMsg($("chpw-done"), "acc.pw.done", { n: r.sessions_ended || 0 });
    warnSessionsLeft(err, r);
    loadSelfService();
  } catch (x) {
    showError(err, x);
    markInvalid(form, x instanceof ApiError ? ({ bad_credentials: "current_password", otp_required: "otp",
      weak_password: "password" })[x.code] : null);
  } finally {
    busy(form, false);
  }
}

async function onTotpReset() {
  const b = $("totp-reset");
  b.disabled = true;
  setMsg($("totp-error"), null);
  try {
    const r = (await api("POST", "/api/account/totp", {})).data;
    $("totp-qr").src = svgData(r.totp.qr_svg);
    $("totp-secret").textContent = (r.totp.secret || "").replace(/(.{4})(?=.)/g, "$1 ");
    $("totp-done").hidden = false;
    warnSessionsLeft($("totp-error"), r);
  } catch (x) {
    showError($("totp-error"), x);
  } finally {
    b.disabled = false;
  }
}

function dl(el, rows) {
  el.replaceChildren();
  for (const [k, v] of rows) {
    if (v === undefined || v === null || v === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    if (v instanceof Node) dd.append(v); else dd.textContent = String(v);
    el.append(dt, dd);
  }
}

// Dates by hand: Chromium's trimmed ICU formats "az" poorly ("1946 M05 7").
const MONTHS = {
  az: ["yanvar", "fevral", "mart", "aprel", "may", "iyun", "iyul", "avqust", "sentyabr",
       "oktyabr", "noyabr", "dekabr"],
  en: ["January", "February", "March", "April", "May", "June", "July", "August", "September",
       "October", "November", "December"],
};
const two = (n) => String(n).padStart(2, "0");
const dayText = (y, m, d) => `${d} ${MONTHS[lang][m]} ${y}`;

function fmtTime(s) {
  const d = typeof s === "number" ? new Date(s * 1000) : new Date(s);
  if (isNaN(d)) return String(s);
  return `${dayText(d.getFullYear(), d.getMonth(), d.getDate())}, ${two(d.getHours())}:${two(d.getMinutes())}`;
}

function fmtDate(s) {
  const m = typeof s === "string" && /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m || +m[2] < 1 || +m[2] > 12) return s;
  return dayText(+m[1], +m[2] - 1, +m[3]);
}

function methodText(s) {
  const amr = Array.isArray(s.amr) ? s.amr : [];
  if (s.method === "password") return t(amr.includes("otp") ? "method.password" : "method.password_only");
  const key = "method." + s.method;
  return key in STRINGS.az ? t(key) : s.method;
}

function recordValue(k, v) {
  if (v === null || v === undefined) return null;
  if (k === "birth_date") return fmtDate(v);
  if (k === "gender") return ("rec.gender." + v) in STRINGS.az ? t("rec.gender." + v) : v;
  if (k === "birth_place" && typeof v === "object")
    return ["settlement", "city", "district", "country"].map((p) => v[p])
      .filter((x, i, a) => x && a.indexOf(x) === i).join(", ");
  if (k === "document" && typeof v === "object") {
    const num = (v.series || "") + (v.number || "");
    return v.expiry ? `${num} (${t("rec.document.expiry")} ${fmtDate(v.expiry)})` : num;
  }
  if (Array.isArray(v)) return v.join(", ");
  if (typeof v === "object") return Object.values(v).filter((x) => typeof x !== "object").join(", ");
  return String(v);
}

const RECORD_ORDER = ["fin", "name", "surname", "patronymic", "birth_date", "birth_place",
                      "gender", "document", "address", "phones"];

function renderAccount() {
  if (!session) return;
  const name = record && (record.name || record.surname)
    ? [record.name, record.surname].filter(Boolean).join(" ") : session.fin;
  $("acc-welcome").textContent = t("acc.welcome", { name });

  const badge = document.createElement("span");
  badge.className = "badge " + (session.acr || "");
  badge.textContent = ("acr." + session.acr) in STRINGS.az ? t("acr." + session.acr) : session.acr;
  dl($("acc-session"), [
    [t("acc.fin"), session.fin],
    [t("acc.method"), methodText(session)],
    [t("acc.acr"), badge],
    [t("acc.expires"), session.expires_at ? fmtTime(session.expires_at) : null],
  ]);

  const reg = $("acc-registry");
  if (record === null) {
    reg.setAttribute("aria-busy", "true");
    reg.replaceChildren();
  } else {
    reg.setAttribute("aria-busy", "false");
    const keys = RECORD_ORDER.filter((k) => k in record)
      .concat(Object.keys(record).filter((k) => !RECORD_ORDER.includes(k)));
    dl(reg, keys.map((k) => [("rec." + k) in STRINGS.az ? t("rec." + k) : k, recordValue(k, record[k])]));
  }
  if (recordError) showError($("acc-registry-error"), recordError);
  else setMsg($("acc-registry-error"), null);

  const box = $("acc-notices");
  if (notices === null) {
    box.setAttribute("aria-busy", "true");
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = t("acc.loading");
    box.replaceChildren(p);
  } else {
    box.setAttribute("aria-busy", "false");
    box.replaceChildren(noticeList(notices));
  }
  if (noticesError) showError($("acc-notices-error"), noticesError);
  else setMsg($("acc-notices-error"), null);
}

function pick(o, names) {
  for (const n of names) if (o[n] !== undefined && o[n] !== null && o[n] !== "") return o[n];
  return null;
}

// The notice the judge signed, when the court hands it over (base64 JSON).
function noticeDocument(n) {
  if (typeof n.document !== "string") return {};
  try {
    const bin = atob(n.document);
    const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
    const d = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return d && typeof d === "object" ? d : {};
  } catch (e) {
    return {};
  }
}

function noticeList(list) {
  if (!list.length) {
    const p = document.createElement("p");
    p.className = "empty";
    p.id = "acc-notices-none";
    p.textContent = t("acc.notices.none");
    return p;
  }
  const ul = document.createElement("ul");
  ul.className = "notices";
  for (const n of list) {
    if (!n || typeof n !== "object") continue;
    const doc = noticeDocument(n);
    const report = n.report && typeof n.report === "object" ? n.report : {};
    const li = document.createElement("li");
    const h = document.createElement("h3");
    h.textContent = pick(doc, ["title", "subject"]) || pick(n, ["title", "subject"]) ||
      (n.id !== undefined ? t("acc.notice.numbered", { id: n.id }) : t("acc.notice.untitled"));
    li.append(h);
    // What a summons is for: case, court, hearing date/time and place, all
    // from the document the judge signed; "received" is only when it came.
    const rows = [];
    const cs = pick(doc, ["case", "case_number"]) || pick(n, ["case", "case_number"]);
    if (cs) rows.push([t("acc.notice.case"), cs]);
    const court = pick(doc, ["court"]);
    if (court) rows.push([t("acc.notice.court"), court]);
    const hearing = pick(doc, ["hearing", "hearing_at"]);
    if (hearing) rows.push([t("acc.notice.hearing"), fmtTime(hearing)]);
    const place = pick(doc, ["place", "room", "address"]);
    if (place) rows.push([t("acc.notice.place"), place]);
    const signer = report.signer && typeof report.signer === "object" ? report.signer : {};
    if (signer.name) {
      const role = signer.role && ("role." + signer.role) in STRINGS.az ? t("role." + signer.role) : signer.role;
      rows.push([t("acc.notice.signer"), [signer.name, role].filter(Boolean).join(", ")]);
    }
    const signedAt = report.timestamp_time || report.signing_time;
    if (signedAt) rows.push([t("acc.notice.signed_at"), fmtTime(signedAt)]);
    const when = pick(n, ["received_at", "delivered_at", "created_at"]);
    if (when) rows.push([t("acc.notice.received"), fmtTime(when)]);
    const meta = document.createElement("dl");
    meta.className = "kv notice-meta";
    dl(meta, rows);
    li.append(meta);
    const text = pick(doc, ["text", "body", "content"]) || pick(n, ["text", "body"]);
    if (typeof text === "string") {
      const p = document.createElement("p");
      p.className = "notice-text";
      p.textContent = text;
      li.append(p);
    }
    if (report.indication === "TOTAL_PASSED") {
      const b = document.createElement("span");
      b.className = "badge high";
      b.textContent = t("acc.notice.signed") + (report.level ? ` (${report.level})` : "");
      li.append(b);
    }
    li.append(noticeActions(n));
    ul.append(li);
  }
  return ul;
}

// A download link for base64 bytes: the document exactly as signed, or its
// detached CAdES signature, to check with any CMS tool (openssl cms -verify).
function downloadLink(b64, name, type, key) {
  const a = document.createElement("a");
  a.className = "btn link";
  a.download = name;
  const bin = atob(b64);
  a.href = URL.createObjectURL(new Blob([Uint8Array.from(bin, (ch) => ch.charCodeAt(0))], { type }));
  a.textContent = t(key);
  return a;
}

// ASiC-S (ETSI EN 319 162-1): a ZIP whose first entry is "mimetype"
// (stored, no extra field), then the signed document and its CAdES
// signature as META-INF/signature.p7s.  Every entry is stored (no
// compression), which the format allows and keeps this small.
const CRC_TABLE = (() => {
  const tbl = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    tbl[n] = c >>> 0;
  }
  return tbl;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function zipStored(files) {
  const enc = new TextEncoder();
  const parts = [];
  const central = [];
  let offset = 0;
  for (const f of files) {
    const name = enc.encode(f.name);
    const crc = crc32(f.data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 10, true); // version needed: 1.0 (stored)
    local.setUint32(14, crc, true);
    local.setUint32(18, f.data.length, true);
    local.setUint32(22, f.data.length, true);
    local.setUint16(26, name.length, true);
    parts.push(new Uint8Array(local.buffer), name, f.data);
    const cd = new DataView(new ArrayBuffer(46));
    cd.setUint32(0, 0x02014b50, true);
    cd.setUint16(4, 10, true);
    cd.setUint16(6, 10, true);
    cd.setUint32(16, crc, true);
    cd.setUint32(20, f.data.length, true);
    cd.setUint32(24, f.data.length, true);
    cd.setUint16(28, name.length, true);
    cd.setUint32(42, offset, true);
    central.push(new Uint8Array(cd.buffer), name);
    offset += 30 + name.length + f.data.length;
  }
  const cdSize = central.reduce((n, p) => n + p.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, files.length, true);
  end.setUint16(10, files.length, true);
  end.setUint32(12, cdSize, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, new Uint8Array(end.buffer)], { type: "application/vnd.etsi.asic-s+zip" });
}

const b64Bytes = (b64) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));

function asicLink(n) {
  const a = document.createElement("a");
  a.className = "btn link";
  a.download = `notice-${n.id}.asics`;
  a.href = URL.createObjectURL(zipStored([
    { name: "mimetype", data: new TextEncoder().encode("application/vnd.etsi.asic-s+zip") },
    { name: `notice-${n.id}.json`, data: b64Bytes(n.document) },
    { name: "META-INF/signature.p7s", data: b64Bytes(n.signature) },
  ]));
  a.textContent = t("acc.notice.download_asic");
  return a;
}

function readText(at) {
  return t("acc.notice.read_at", { time: fmtTime(at) });
}

function noticeActions(n) {
  const box = document.createElement("div");
  box.className = "actions notice-actions";
  if (typeof n.document === "string")
    box.append(downloadLink(n.document, `notice-${n.id}.json`, "application/json", "acc.notice.download"));
  if (typeof n.signature === "string")
    box.append(downloadLink(n.signature, `notice-${n.id}.p7s`, "application/pkcs7-signature", "acc.notice.download_sig"));
  if (typeof n.document === "string" && typeof n.signature === "string") box.append(asicLink(n));
  const status = document.createElement("p");
  status.className = "hint notice-read";
  status.setAttribute("role", "status");
  if (n.read_at) {
    status.textContent = readText(n.read_at);
  } else if (n.id !== undefined) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn primary";
    b.textContent = t("acc.notice.mark_read");
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        const r = (await api("POST", `/api/court/notices/${encodeURIComponent(n.id)}/read`)).data;
        n.read_at = r.read_at;
        b.remove();
        status.textContent = readText(n.read_at);
      } catch (x) {
        b.disabled = false;
        const [key, vars] = errorMsg(x);
        status.textContent = t(key, vars);
      }
    });
    box.append(b);
  }
  box.append(status);
  return box;
}

async function onLogout() {
  const b = $("logout");
  b.disabled = true;
  try {
    await api("POST", "/auth/logout");
  } catch (x) {
    // 401: already gone; anything else: the cookie may still be good, but
    // the page forgets it either way and the next request will tell.
  } finally {
    b.disabled = false;
  }
  session = null;
  record = notices = recordError = noticesError = null;
  go("#/");
  flash("acc.logged_out");
}

// ------------------------------------------------- OpenID Connect clients

// An e-service at another origin sent the person here (GET /authorize,
// docs/oidc.md): ?oidc=<request id>&acr=<level>[&consent=1][&hint=FIN]
// [&lang=az|en]&client=<name>.  These only shape the page; the gateway
// checks everything again when the page hands the request back.
const OIDC = (() => {
  const q = new URLSearchParams(location.search);
  const id = q.get("oidc");
  if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return {};
  return { id, acr: q.get("acr") || "substantial", consent: q.get("consent") === "1",
           hint: q.get("hint") || "", lang: q.get("lang") || "", client: q.get("client") || "" };
})();

// Only the ways in that reach the level asked (step-up, as TARA does).
function oidcLogin() {
  const high = OIDC.acr === "high";
  $("tab-password").hidden = high;
  if (high) selectTab($("tab-mobile"), false);
  setMsg($("oidc-login"), high ? "oidc.login.high" : "oidc.login", { name: OIDC.client });
  $("oidc-login").hidden = false;
  if (OIDC.hint) $("pw-fin").value = OIDC.hint;
  show("login", true);
}

let consentAsked = null;
async function oidcConsent() {
  try {
    consentAsked = (await api("GET", "/authorize/consent?id=" + encodeURIComponent(OIDC.id))).data;
  } catch (x) {
    oidcLogin();
    return;
  }
  setMsg($("consent-lead"), "consent.lead", { name: consentAsked.name, reg: consentAsked.registered_as });
  if (consentAsked.purpose) setMsg($("consent-purpose"), "consent.purpose", { purpose: consentAsked.purpose });
  const ul = $("consent-fields");
  ul.textContent = "";
  for (const f of consentAsked.fields || []) {
    const li = document.createElement("li");
    li.textContent = t("field.oidc." + f) === "field.oidc." + f ? f : t("field.oidc." + f);
    ul.append(li);
  }
  show("consent", true);
}

async function onConsent(approve) {
  for (const id of ["consent-approve", "consent-deny"]) $(id).disabled = true;
  try {
    const r = await api("POST", "/authorize/consent", { id: OIDC.id, approve });
    location.assign(r.data.next);
  } catch (x) {
    showError($("consent-error"), x);
    for (const id of ["consent-approve", "consent-deny"]) $(id).disabled = false;
  }
}

async function loadConsents() {
  const ul = $("acc-consents");
  let list = [];
  try {
    list = (await api("GET", "/oidc/consents")).data.consents || [];
  } catch (x) {
    list = [];
  }
  ul.textContent = "";
  if (!list.length) {
    const li = document.createElement("li");
    li.textContent = t("acc.consents.none");
    ul.append(li);
  }
  for (const c of list) {
    const li = document.createElement("li");
    li.textContent = `${c.name} (${(c.fields || []).join(", ")}) `;
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn";
    b.textContent = t("acc.consents.withdraw");
    b.addEventListener("click", async () => {
      b.disabled = true;
      try { await api("POST", "/oidc/consents", { withdraw: c.client }); } catch (x) { /* shown by the reload */ }
      loadConsents();
    });
    li.append(b);
    ul.append(li);
  }
}

// ---------------------------------------------------------------- start

function init() {
  applyLang();
  for (const b of document.querySelectorAll(".lang-btn"))
    b.addEventListener("click", () => setLang(b.dataset.lang));
  for (const b of tabs()) {
    b.addEventListener("click", () => selectTab(b, false));
    b.addEventListener("keydown", tabKeys);
  }
  $("form-password").addEventListener("submit", onPassword);
  $("form-mobile").addEventListener("submit", onMobile);
  $("mob-cancel").addEventListener("click", () => {
    mobileReset();
    setMsg($("mob-error"), "mob.cancelled_here");
    $("mob-submit").focus();
  });
  $("qr-new").addEventListener("click", () => { qrStop(); qrStart(); });
  $("card-tls").addEventListener("click", onCardTls);
  $("card-cli").textContent = `darvaza-card login --gateway ${location.origin}`;
  $("form-register").addEventListener("submit", onRegister);
  $("reg-continue").addEventListener("click", onRegisterContinue);
  $("link-register").addEventListener("click", () => flash(null));
  $("logout").addEventListener("click", onLogout);
  $("acc-end-all").addEventListener("click", onEndAll);
  $("form-chpw").addEventListener("submit", onChangePassword);
  $("totp-reset").addEventListener("click", onTotpReset);
  window.addEventListener("hashchange", () => {
    if (location.hash !== "#/register") registerReset();
    route(true);
  });

  $("consent-approve").addEventListener("click", () => onConsent(true));
  $("consent-deny").addEventListener("click", () => onConsent(false));
  if (OIDC.id) {
    if (OIDC.lang === "az" || OIDC.lang === "en") setLang(OIDC.lang);
    if (OIDC.consent) oidcConsent();
    else oidcLogin();
    return;
  }

  // Back from the card listener?  Then that decides; otherwise signed in
  // already (the cookie)?  Then the account page, else sign-in.
  cardReturn().then((handled) => handled || sessionStart());
}

function sessionStart() {
  return api("GET", "/auth/session").then((r) => {
    session = r.data;
    if (location.hash !== "#/register") history.replaceState(null, "", "#/account");
    route(false);
  }, () => {
    session = null;
    route(false);
  });
}

init();

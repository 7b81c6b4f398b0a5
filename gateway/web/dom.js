// dom.js - the few helpers the portal's page modules share: an element by
// id, the page's language, a translated string (with {name} fields) and an
// element built from attributes and children (text is never parsed as HTML),
// and the API call: JSON in and out, a problem+json answer thrown as an
// ApiError (code, status, problem, Retry-After, request id).

import { STRINGS } from "./i18n.js";

export const $ = (id) => document.getElementById(id);
export const lang = () => (STRINGS[document.documentElement.lang] ? document.documentElement.lang : "az");

export function t(key, vars) {
  let s = STRINGS[lang()][key] ?? STRINGS.az[key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

export function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of kids) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export class ApiError extends Error {
  constructor(code, status, problem, retryAfter, rid) {
    super(code);
    this.code = code;
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
    this.rid = rid;
  }
}

export async function api(method, path, body, signal, headers) {
  const opts = { method, headers: { accept: "application/json", ...(headers || {}) }, credentials: "same-origin",
                 cache: "no-store", signal };
  if (body !== undefined) {
    opts.headers["content-type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    if (signal && signal.aborted) throw e;
    throw new ApiError("network", 0);
  }
  let data = null;
  const ct = res.headers.get("content-type") || "";
  if (res.status !== 204 && /json/.test(ct)) {
    try { data = await res.json(); } catch (e) { data = null; }
  }
  if (!res.ok) {
    const code = data && typeof data.code === "string" ? data.code : "http_" + res.status;
    throw new ApiError(code, res.status, data, res.headers.get("retry-after"),
                       res.headers.get("darvaza-request-id"));
  }
  return { status: res.status, data };
}

// dom.js - the few helpers the portal's page modules share: an element by
// id, the page's language, a translated string (with {name} fields) and an
// element built from attributes and children (text is never parsed as HTML).

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

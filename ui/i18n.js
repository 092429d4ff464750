// English and Chinese texts; the choice defaults to the browser's language and is remembered.

import { EN, ZH } from "./strings.js";

const LANG_KEY = "gateway.lang";
const DICTS = { en: EN, zh: ZH };
const listeners = new Set();
let lang = pickLanguage();

function pickLanguage() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && DICTS[saved]) return saved;
  const browser = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
  return browser.toLowerCase().startsWith("zh") ? "zh" : "en";
}

export function language() {
  return lang;
}

/** The text for `key` in the current language, with {name} placeholders filled from params. */
export function t(key, params = {}, fallback) {
  const template = DICTS[lang][key] ?? EN[key] ?? fallback ?? key;
  return template.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
}

/** Translate every element marked with data-i18n (text) or data-i18n-label/-placeholder/-title. */
export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

export function setLanguage(next) {
  if (!DICTS[next] || next === lang) return;
  lang = next;
  localStorage.setItem(LANG_KEY, next);
  applyLanguage();
}

export function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  translate();
  for (const fn of listeners) fn(lang);
}

/** Call fn after the language changed (for texts built with parameters). */
export function onLanguage(fn) {
  listeners.add(fn);
}

/** An API error (or any Error) in plain words: what went wrong first, the gateway's own message after.
 * In Chinese the error's type is said in Chinese and the gateway's English message follows as the original. */
export function errorText(error) {
  if (!error) return "";
  if (typeof error === "string") return error;
  const status = error.status;
  const message = error.message || "";
  let lead = "";
  if (error.type === "network" || status === 0) return t("err.network");
  if (status === 401) lead = t("err.unauthorized");
  else if (status === 403) lead = t("err.forbidden");
  else if (status === 404) lead = t("err.not_found");
  else if (status === 409) lead = t("err.conflict");
  else if (status === 502) lead = t("err.bad_gateway");
  else if (status === 503) lead = t("err.unavailable");
  else if (status === 504) lead = t("err.timeout");
  else if (status >= 500) lead = t("err.server");
  else if (status === 400) lead = t("err.bad_input");
  if (lang !== "en" && error.type && DICTS[lang][`errtype.${error.type}`]) {
    const named = `${lead} ${DICTS[lang][`errtype.${error.type}`]}`.trim();
    return message ? `${named}\n${t("original_message", { m: message })}` : named;
  }
  return lead ? `${lead} ${message}`.trim() : message;
}

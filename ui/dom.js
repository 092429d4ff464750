// Small DOM helpers: element builder, formatting, inline errors, confirmation dialog.

import { t, errorText } from "./i18n.js";

/** h("tag.class#id", {attrs, on: {event: fn}}, ...children) -> Element. */
export function h(spec, attrs = {}, ...children) {
  if (attrs instanceof Node || Array.isArray(attrs) || typeof attrs !== "object" || attrs === null) {
    children.unshift(attrs);
    attrs = {};
  }
  const tag = spec.match(/^[a-z0-9-]*/i)[0] || "div";
  const el = document.createElement(tag);
  const classes = [];
  for (const [, kind, name] of spec.slice(tag.length).matchAll(/([.#])([^.#]+)/g)) {
    if (kind === "#") el.id = name; else classes.push(name);
  }
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "class") {
      el.className = [el.className, value].filter(Boolean).join(" ");
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else if (key === "value" || key === "checked" || key === "textContent") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : value);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Set text only when it changed (keeps live tables cheap). */
export function setText(el, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (el.textContent !== value) el.textContent = value;
}

// ----- formatting -------------------------------------------------------------------------------------
export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const gib = bytes / 1024 ** 3;
  if (gib >= 1) return `${gib.toFixed(gib >= 10 ? 0 : 1)} GiB`;
  return `${Math.round(bytes / 1024 ** 2)} MiB`;
}

export function fmtSeconds(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 1) return t("dur.ms", { n: Math.round(seconds * 1000) });
  if (seconds < 60) return t("dur.s", { n: seconds.toFixed(seconds < 10 ? 1 : 0) });
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return t("dur.min_s", { m: minutes, s: String(Math.floor(seconds % 60)).padStart(2, "0") });
  return t("dur.h_min", { h: Math.floor(minutes / 60), m: String(minutes % 60).padStart(2, "0") });
}

/** The gateway's clock minus the page's (seconds), learnt from answers that carry the gateway's time. */
export const clock = { skew: 0 };

/** Seconds a job waited before it started; still counting while it waits (event payloads freeze it). */
export function waitSeconds(job) {
  if (!job || !job.created_at) return null;
  if (job.started_at) return Math.max(0, job.started_at - job.created_at);
  if (["queued", "submitted"].includes(job.state)) return Math.max(0, Date.now() / 1000 + clock.skew - job.created_at);
  return job.wait_seconds ?? null;
}

export function fmtTime(epoch) {
  if (!epoch) return "—";
  const date = new Date(epoch * 1000);
  const today = new Date();
  const time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit",
    hour12: false });
  if (date.toDateString() === today.toDateString()) return time;
  return `${date.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${time}`;
}

export function fmtNumber(n, digits = 0) {
  if (n === null || n === undefined) return "—";
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function shortId(id) {
  return id ? id.slice(0, 8) : "—";
}

// ----- widgets ------------------------------------------------------------------------------------
/** A labelled progress bar; update with setProgress. */
export function progressBar(percent = 0, label = "") {
  const fill = h("div.bar-fill");
  const text = h("span.bar-text");
  const bar = h("div.bar", { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
    "aria-label": label || t("progress") }, fill, text);
  setProgress(bar, percent);
  return bar;
}

export function setProgress(bar, percent, state) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  const rounded = Math.round(value);
  if (bar.getAttribute("aria-valuenow") !== String(rounded)) {
    bar.setAttribute("aria-valuenow", String(rounded));
    bar.firstChild.style.width = `${value}%`;
    bar.lastChild.textContent = `${rounded} %`;
  }
  if (state !== undefined) bar.dataset.state = state;
}

/** A state badge (online, running, failed, ...). */
export function badge(state, text) {
  return h("span.badge", { dataset: { state }, "data-i18n": text === undefined ? `state.${state}` : null },
    text ?? t(`state.${state}`));
}

/** Show an API error in plain words right after `anchor` (replacing an earlier one there). */
export function showError(anchor, error, { timeout = 0 } = {}) {
  clearError(anchor);
  if (!error) return null;
  const box = h("div.inline-error", { role: "alert" }, typeof error === "string" ? error : errorText(error));
  anchor.after(box);
  anchor._errorBox = box;
  if (/^(INPUT|SELECT|TEXTAREA)$/.test(anchor.tagName)) anchor.setAttribute("aria-invalid", "true");
  if (timeout) setTimeout(() => { if (anchor._errorBox === box) clearError(anchor); }, timeout);
  return box;
}

export function clearError(anchor) {
  if (anchor && anchor._errorBox) {
    anchor._errorBox.remove();
    anchor._errorBox = null;
  }
  if (anchor && anchor.removeAttribute) anchor.removeAttribute("aria-invalid");
}

/** Ask before something destructive; resolves true when confirmed. */
export function confirmDialog(message, confirmLabel) {
  return new Promise((resolve) => {
    const ok = h("button.btn.danger", { type: "button", value: "ok" }, confirmLabel || t("confirm"));
    const cancel = h("button.btn", { type: "button", value: "cancel" }, t("cancel_action"));
    const dialog = h("dialog.confirm", { "aria-label": t("confirm") },
      h("p", {}, message), h("div.dialog-actions", {}, cancel, ok));
    const done = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    ok.addEventListener("click", () => done(true));
    cancel.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", (event) => { event.preventDefault(); done(false); });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** Run an async action from a button: disables it meanwhile and shows an error next to it. */
export async function busy(button, action, errorAnchor) {
  const anchor = errorAnchor || button;
  clearError(anchor);
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } catch (error) {
    showError(anchor, error, { timeout: 12000 });
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** Call fn at most once per `ms`, always with the latest call honoured. */
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  return (...args) => {
    const wait = last + ms - Date.now();
    if (timer) return;
    timer = setTimeout(() => { timer = null; last = Date.now(); fn(...args); }, Math.max(0, wait));
  };
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

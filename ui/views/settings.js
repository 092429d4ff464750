// Settings: the runtime settings (PATCH /api/settings), secrets shown only as "set", the rest read-only.

import { api, setToken } from "../api.js";
import { h, setChildren, setText, showError, clearError, busy } from "../dom.js";
import { t, onLanguage } from "../i18n.js";

// Editable settings the page offers, in display order, with their input kind.
const FIELDS = [
  { name: "worker_auth_username", kind: "text", group: "auth" },
  { name: "worker_auth_password", kind: "secret", group: "auth" },
  { name: "worker_request_timeout", kind: "number", min: 0.1, step: "any", unit: "s", group: "limits" },
  { name: "queue_cache_ttl_seconds", kind: "number", min: 0.1, step: "any", unit: "s", group: "limits" },
  { name: "default_max_queue", kind: "number", min: 1, step: 1, group: "limits" },
  { name: "max_retries", kind: "number", min: 0, step: 1, group: "limits" },
  { name: "max_queued", kind: "number", min: 0, step: 1, group: "limits" },
  { name: "max_queued_per_key", kind: "number", min: 0, step: 1, group: "limits" },
];

/** Which field a settings error is about: error.field, else the setting named in the message. */
function fieldOf(error) {
  if (error.field) return error.field;
  const match = /setting (\w+)/.exec(error.message || "");
  return match ? match[1] : null;
}

export function mount(container) {
  const inputs = {};
  const clears = {};
  const groups = { auth: h("div.form-grid"), limits: h("div.form-grid") };
  for (const spec of FIELDS) {
    const id = `setting-${spec.name}`;
    const input = spec.kind === "number"
      ? h("input", { type: "number", id, name: spec.name, min: String(spec.min), step: String(spec.step) })
      : h("input", { type: spec.kind === "secret" ? "password" : "text", id, name: spec.name, autocomplete: "off",
        spellcheck: "false" });
    input.setAttribute("aria-describedby", `${id}-hint`);
    inputs[spec.name] = input;
    let extra = null;
    if (spec.kind === "secret") {
      const clear = h("input", { type: "checkbox", id: `${id}-clear` });
      clear.addEventListener("change", () => { input.disabled = clear.checked; if (clear.checked) input.value = ""; });
      clears[spec.name] = clear;
      extra = h("div.secret-state", {}, h("span.chip.secret-chip"), h("label.inline", { for: clear.id }, clear,
        h("span", { "data-i18n": "remove_password" })));
    }
    groups[spec.group].append(h("div.field", { dataset: { field: spec.name } },
      h("label", { for: id }, h("span", { "data-i18n": `setting.${spec.name}` }),
        spec.unit ? h("span.muted", {}, ` (${spec.unit})`) : null),
      input, extra, h("div.hint", { id: `${id}-hint`, "data-i18n": `setting_hint.${spec.name}` })));
  }
  const saveButton = h("button.btn.primary#save-settings", { type: "submit", "data-i18n": "save" });
  const saved = h("span.ok-text.small", { role: "status", "aria-live": "polite" });
  const formError = h("div.form-error-anchor");
  const form = h("form.panel.settings-form", { novalidate: true, "aria-labelledby": "h-settings" },
    h("div.panel-head", {}, h("h2#h-settings", { "data-i18n": "nav.settings" })),
    h("fieldset", {}, h("legend", { "data-i18n": "settings_auth" }), h("p.hint", { "data-i18n": "settings_auth_hint" }), groups.auth),
    h("fieldset", {}, h("legend", { "data-i18n": "settings_limits" }), groups.limits),
    formError,
    h("div.dialog-actions", {}, saved, h("span.spacer"), saveButton));

  const readOnly = h("dl.kv.readonly");
  const tokenInput = h("input#admin-token", { type: "password", autocomplete: "off", value: "" });
  const tokenButton = h("button.btn", { type: "submit", "data-i18n": "save_token" });
  const tokenState = h("span.small.muted", { role: "status" });
  const side = h("div.side",
    h("section.panel", { "aria-labelledby": "h-readonly" },
      h("div.panel-head", {}, h("h2#h-readonly", { "data-i18n": "settings_readonly" })),
      h("p.hint", { "data-i18n": "settings_readonly_hint" }), readOnly),
    h("form.panel#token-form", { "aria-labelledby": "h-token" },
      h("div.panel-head", {}, h("h2#h-token", { "data-i18n": "access_token" })),
      h("p.hint", { "data-i18n": "access_token_hint" }),
      h("div.field", {}, h("label", { for: "admin-token", "data-i18n": "token" }), tokenInput),
      h("div.dialog-actions", {}, tokenState, h("span.spacer"), tokenButton)));
  const el = h("div.view-settings.grid-2", form, side);
  container.append(el);

  let current = null;
  let editable = [];

  function fill() {
    if (!current) return;
    for (const spec of FIELDS) {
      const input = inputs[spec.name];
      clearError(input);
      const allowed = editable.includes(spec.name);
      input.disabled = !allowed;
      if (spec.kind === "secret") {
        input.value = "";
        const isSet = Boolean(current[`${spec.name}_set`]);
        const chip = input.parentElement.querySelector(".secret-chip");
        chip.dataset.i18n = isSet ? "set" : "not_set";
        setText(chip, t(chip.dataset.i18n));
        chip.classList.toggle("ok", isSet);
        input.placeholder = isSet ? t("password_set_placeholder") : t("password_none_placeholder");
        clears[spec.name].checked = false;
        clears[spec.name].disabled = !isSet;
      } else {
        input.value = current[spec.name] ?? "";
      }
    }
    const shown = new Set(FIELDS.map((f) => f.name).flatMap((n) => [n, `${n}_set`]));
    setChildren(readOnly, Object.entries(current).filter(([k]) => !shown.has(k)).map(([k, v]) => [
      h("dt.mono", {}, k),
      h("dd", {}, typeof v === "boolean" ? (k.endsWith("_set") ? (v ? t("set") : t("not_set")) : String(v))
        : Array.isArray(v) ? v.join(", ") || "—" : v === null || v === "" ? "—" : String(v)),
    ]));
  }

  async function load() {
    try {
      const answer = await api.settings();
      current = answer.settings;
      editable = answer.editable || [];
      clearError(formError);
      fill();
    } catch (error) {
      showError(formError, error);
    }
  }

  function changes() {
    const out = {};
    for (const spec of FIELDS) {
      if (!editable.includes(spec.name)) continue;
      const input = inputs[spec.name];
      if (spec.kind === "secret") {
        if (clears[spec.name].checked) out[spec.name] = null;
        else if (input.value) out[spec.name] = input.value;
      } else if (spec.kind === "number") {
        if (input.value === "") continue;
        const value = Number(input.value);
        if (value !== current[spec.name]) out[spec.name] = value;
      } else if (input.value.trim() !== (current[spec.name] || "")) {
        out[spec.name] = input.value.trim() || null;
      }
    }
    return out;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setText(saved, "");
    for (const input of Object.values(inputs)) clearError(input);
    clearError(formError);
    for (const spec of FIELDS) {
      const input = inputs[spec.name];
      if (spec.kind === "number" && (!input.checkValidity() || input.value === "")) {
        showError(input, t("err.number_min", { min: spec.min }));
        input.focus();
        return;
      }
    }
    const body = changes();
    if (!Object.keys(body).length) { setText(saved, t("nothing_changed")); return; }
    busy(saveButton, async () => {
      try {
        const answer = await api.saveSettings(body);
        current = answer.settings;
        editable = answer.editable || editable;
        fill();
        setText(saved, t("saved"));
      } catch (error) {
        const input = inputs[fieldOf(error)];
        if (input) { showError(input, error); input.focus(); } else showError(formError, error);
      }
    });
  });

  side.querySelector("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setText(tokenState, t(tokenInput.value.trim() ? "token_saved" : "token_cleared"));
    setToken(tokenInput.value.trim()); // the gateway keeps it in an HttpOnly cookie; the page reloads
  });

  onLanguage(fill);
  return {
    el,
    show() { setText(saved, ""); load(); },
    hide() {},
  };
}

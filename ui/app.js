// The admin page: hash routing between views, language switch, live connection indicator.

import { applyLanguage, language, setLanguage, t, onLanguage } from "./i18n.js";
import { connect, on, refreshWorkers, refreshRunningJobs, state } from "./live.js";
import { h, setText, fmtTime, throttle, showError, clearError } from "./dom.js";
import { api, migrateOldToken } from "./api.js";
import * as overview from "./views/overview.js";
import * as workers from "./views/workers.js";
import * as jobs from "./views/jobs.js";
import * as submit from "./views/submit.js";
import * as settings from "./views/settings.js";

const MODULES = { overview, workers, jobs, submit, settings };

function navigate(hash) {
  if (location.hash !== hash) location.hash = hash;
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [name, query = ""] = raw.split("?");
  return { name: MODULES[name] ? name : "overview", params: new URLSearchParams(query) };
}

function start() {
  const main = document.getElementById("main");
  const views = {};
  for (const [name, module] of Object.entries(MODULES)) {
    const section = h("section.view", { dataset: { view: name }, hidden: true, "aria-labelledby": `tab-${name}` });
    main.append(section);
    views[name] = { section, ...module.mount(section, { navigate }) };
  }
  let current = null;
  function route() {
    const { name, params } = parseHash();
    if (current && current !== name) {
      views[current].hide();
      views[current].section.hidden = true;
    }
    const view = views[name];
    view.section.hidden = false;
    const changed = current !== name;
    current = name;
    for (const link of document.querySelectorAll(".tabs a")) {
      link.id = `tab-${link.dataset.view}`;
      if (link.dataset.view === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.body.dataset.view = name;
    view.show(params);
    if (changed) window.scrollTo(0, 0);
  }
  window.addEventListener("hashchange", route);

  const langSelect = document.getElementById("lang-select");
  langSelect.value = language();
  langSelect.addEventListener("change", () => setLanguage(langSelect.value));

  const conn = document.getElementById("conn");
  const connText = document.getElementById("conn-text");
  const showConnection = () => {
    conn.dataset.state = state.connected ? "on" : "off";
    connText.textContent = state.connected ? t("live") : t("offline_stream");
  };
  on("connection", showConnection);
  onLanguage(showConnection);
  // "updated 12:03:04" next to Live: when the page last heard from the gateway (a silent stream shows it).
  const updated = document.getElementById("conn-updated");
  const showUpdated = () => {
    if (state.updatedAt) setText(updated, t("updated_at", { time: fmtTime(state.updatedAt / 1000) }));
  };
  on("updated", throttle(showUpdated, 1000));
  onLanguage(showUpdated);

  // Search from every page: one match opens that job, several list them on the jobs page.
  const search = document.getElementById("job-search");
  const searchInput = document.getElementById("job-search-input");
  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = searchInput.value.trim();
    if (!q) return;
    clearError(search);
    try {
      const found = await api.tasks({ q, limit: 2 });
      if (found.total === 1) navigate(`#/jobs?job=${found.items[0].prompt_id}`);
      else if (found.total > 1) navigate(`#/jobs?q=${encodeURIComponent(q)}`);
      else showError(search, t("search_none", { q }), { timeout: 6000 });
    } catch (error) {
      showError(search, error, { timeout: 8000 });
    }
  });
  on("resync", () => { refreshWorkers().catch(() => {}); refreshRunningJobs().catch(() => {}); });

  // The editor link needs no token of its own: the page's sign-in cookie (path /) reaches /comfy/ too.

  applyLanguage();
  showConnection();
  route();
  refreshWorkers().catch(() => {});
  refreshRunningJobs().catch(() => {});
  connect();
  // Worker events carry no "deleted" marker yet, so a slow reload also drops workers removed elsewhere.
  setInterval(() => { if (!document.hidden) refreshWorkers().catch(() => {}); }, 30000);
}

if (!migrateOldToken()) start();

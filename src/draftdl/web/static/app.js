// The dashboard: hash routes (#/, #/task/<id>, #/submit, #/settings), the one all-tasks
// stream feeding whichever view is open, the language switch and the token prompt.

import * as api from "./api.js";
import { DetailView } from "./detail.js";
import { htmlLang, lang, onLangChange, setLang, t, translate } from "./i18n.js";
import { ListView } from "./list.js";
import { SettingsView } from "./settings.js";
import { TaskStream } from "./stream.js";
import { SubmitView } from "./submit.js";
import { tokenDialog } from "./ui.js";

const main = document.getElementById("main");
const conn = document.getElementById("conn");
const langSelect = document.getElementById("lang");

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

const views = {
  list: new ListView(),
  detail: new DetailView({ navigate }),
  submit: new SubmitView({ navigate }),
  settings: new SettingsView(),
};
let current = null; // {name, view, arg}

function parse(hash) {
  const parts = (hash || "#/").slice(2).split("/");
  if (parts[0] === "task" && parts[1]) return { name: "detail", arg: decodeURIComponent(parts[1]) };
  if (parts[0] === "submit") return { name: "submit" };
  if (parts[0] === "settings") return { name: "settings" };
  return { name: "list" };
}

function show(name, arg) {
  if (current) current.view.unmount();
  const view = views[name];
  current = { name, view, arg };
  view.mount(main, arg);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === (name === "detail" ? "list" : name)) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (name !== "detail") document.title = `${view.title()} · draftdl`;
}

function route() {
  const hash = location.hash || "#/";
  if (!hash.startsWith("#/")) return; // an in-page anchor, not a route
  const { name, arg } = parse(hash);
  const moved = current && (current.name !== name || current.arg !== arg);
  show(name, arg);
  if (moved) main.focus({ preventScroll: false }); // keyboard users land on the new view
}

const stream = new TaskStream({
  onEvent(name, data) {
    if (!current) return;
    if (name === "tasks_subscribed") current.view.refresh(); // no snapshot: read again
    else current.view.onEvent(name, data);
  },
  onState(state) {
    conn.dataset.state = state;
    conn.textContent = t(`conn.${state}`);
  },
});

api.setTokenPrompt((refused) => tokenDialog(refused));
api.onTokenChange(() => {
  stream.start(); // the stream's ?token= changes
  if (current) current.view.refresh();
});

function applyLanguage() {
  document.documentElement.lang = htmlLang();
  translate(document);
  langSelect.value = lang();
  if (conn.dataset.state) conn.textContent = t(`conn.${conn.dataset.state}`);
}

langSelect.addEventListener("change", () => setLang(langSelect.value));
onLangChange(() => {
  applyLanguage();
  if (current) show(current.name, current.arg); // views draw their text again
});

window.addEventListener("hashchange", route);
applyLanguage();
route();
stream.start();

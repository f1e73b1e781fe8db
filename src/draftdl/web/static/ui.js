// Shared pieces: the status badge and progress bar, a toast, dialogs (token, confirm), copy.

import { h, setAttr, setText, uid } from "./dom.js";
import { t } from "./i18n.js";
import * as fmt from "./format.js";

export function badge(status) {
  const el = h("span", { class: "badge" });
  setBadge(el, status);
  return el;
}

export function setBadge(el, status, kind = "status") {
  setAttr(el, "data-status", status);
  setText(el, t(`${kind}.${status}`));
}

/** A bar with its percent beside it: role=progressbar, aria-valuenow is the percent. */
export function progressBar(label) {
  const fill = h("span", { class: "bar-fill" });
  const bar = h(
    "span",
    {
      class: "bar",
      role: "progressbar",
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": "0",
      "aria-label": label,
    },
    fill,
  );
  const text = h("span", { class: "num pct" }, fmt.percent(0));
  const wrap = h("span", { class: "bar-wrap" }, bar, text);
  return { el: wrap, bar, fill, text };
}

export function setProgress(parts, percent, status) {
  const p = Math.min(Math.max(Number(percent) || 0, 0), 100);
  setAttr(parts.bar, "aria-valuenow", String(p));
  setAttr(parts.bar, "data-status", status);
  const width = `${p}%`;
  if (parts.fill.style.width !== width) parts.fill.style.width = width; // CSSOM: CSP allows it
  setText(parts.text, fmt.percent(p));
}

let toastTimer = null;
export function toast(message) {
  const el = document.getElementById("toast");
  if (!el) return;
  setText(el, message);
  el.classList.add("shown");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("shown"), 4000);
}

/** A modal dialog built fresh each time; resolves with what ``read`` returns, or null. */
function modal({ title, body, confirm, read, danger = false, focus }) {
  return new Promise((resolve) => {
    const titleId = uid("dlg");
    const cancel = h("button", { type: "button", class: "secondary" }, t("common.cancel"));
    const ok = h("button", { type: "submit", class: danger ? "danger" : "primary" }, confirm);
    const form = h("form", { class: "dialog-form" }, h("h2", { id: titleId }, title), body, h("div", { class: "dialog-actions" }, cancel, ok));
    const dialog = h("dialog", { "aria-labelledby": titleId }, form);
    let result = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault(); // never a form submission: CSP form-action 'none'
      result = read();
      dialog.close();
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    (focus || ok).focus();
  });
}

export function tokenDialog(refused) {
  const id = uid("token");
  // Hidden as typed, but no password: the token lives for the tab's session only, so the
  // browser is not invited to fill it in or keep it (autocomplete off).
  const input = h("input", {
    id,
    type: "password",
    name: "draftdl-token",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
    autocapitalize: "off",
  });
  const body = [
    h("p", { class: refused ? "error" : "" }, refused ? t("auth.refused") : t("auth.needed")),
    h("label", { for: id }, t("auth.label")),
    input,
    h("p", { class: "hint" }, t("auth.kept")),
  ];
  return modal({
    title: t("auth.title"),
    body,
    confirm: t("auth.submit"),
    read: () => input.value.trim() || null,
    focus: input,
  });
}

/** Resolves with the checked options ({name: bool}) when confirmed, else null. */
export function confirmDialog({ title, message, confirm, options = [], danger = true }) {
  const boxes = options.map((option) => {
    const id = uid("opt");
    const box = h("input", { type: "checkbox", id, checked: Boolean(option.checked) });
    return { name: option.name, box, el: h("div", { class: "check" }, box, h("label", { for: id }, option.label)) };
  });
  return modal({
    title,
    body: [h("p", {}, message), boxes.map((b) => b.el)],
    confirm,
    danger,
    read: () => Object.fromEntries(boxes.map((b) => [b.name, b.box.checked])),
  });
}

/** The clipboard when the page may use it, else a selected text field and execCommand. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* try the old way */
  }
  const field = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
  field.value = text;
  document.body.append(field);
  field.select();
  let done = false;
  try {
    done = document.execCommand("copy");
  } catch {
    done = false;
  }
  field.remove();
  return done;
}

// One task: its figures, files, draft (path, copy, zip) and the queue controls, each button
// enabled only where the task's state allows it (states.js); the server's refusal (409 in a
// race) is shown as it words it.

import * as api from "./api.js";
import { h, setAttr, setText, uid } from "./dom.js";
import * as fmt from "./format.js";
import { t } from "./i18n.js";
import { mergeEvent, newer } from "./list.js";
import { allowed } from "./states.js";
import { badge, confirmDialog, copyText, progressBar, setBadge, setProgress, toast } from "./ui.js";

const FILE_PAGE = 200; // file rows drawn at first; more on request
const RELOAD_DELAY = 150; // ms after a status event: the event has no files
const RELOAD_EVERY = 2000; // at most this often for a task too big to carry its files
// Once more after a status change: files reach their new state (a pause's "paused") up to
// a monitor tick later, and no event says so.
const SETTLE_DELAY = 1200;

export class DetailView {
  constructor({ navigate }) {
    this.navigate = navigate;
    this.id = null;
    this.task = null;
    this.early = null; // [name, data]: the latest event heard before the first answer
    this.root = null;
    this.seq = 0;
    this.fileRows = [];
    this.shownFiles = FILE_PAGE;
    this.busy = false;
    this.gone = false;
    this.reloadTimer = null;
    this.settleTimer = null;
    this.lastLoad = 0;
  }

  title() {
    return this.task?.title || t("detail.heading");
  }

  mount(container, id) {
    if (id !== this.id) {
      this.task = null;
      this.shownFiles = FILE_PAGE;
    }
    this.early = null;
    this.id = id;
    this.gone = false;
    this.fileRows = [];
    this.root = this.render();
    container.replaceChildren(this.root);
    if (this.task) this.paint();
    this.load();
  }

  unmount() {
    clearTimeout(this.reloadTimer);
    clearTimeout(this.settleTimer);
    this.root = null;
    this.early = null;
  }

  refresh() {
    this.load();
  }

  path(suffix = "") {
    return `api/tasks/${encodeURIComponent(this.id)}${suffix}`;
  }

  // -- data -------------------------------------------------------------------------------

  async load() {
    const seq = ++this.seq;
    this.lastLoad = Date.now();
    try {
      const task = await api.get(this.path());
      if (seq !== this.seq || !this.root) return;
      if (this.task && !newer(this.task, task)) return; // an event was ahead of this answer
      this.task = task;
      this.paint();
      this.replay();
    } catch (err) {
      if (seq !== this.seq || !this.root) return;
      if (err.status === 404) this.markGone(t("detail.notFound"));
      else this.say(err.message, true);
    }
  }

  reloadSoon(delay = RELOAD_DELAY) {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.load(), delay);
  }

  /** The latest event heard while the first answer was on its way, unless the answer is
   * newer. */
  replay() {
    const early = this.early;
    this.early = null;
    if (early && newer(this.task, early[1])) this.onEvent(...early);
  }

  onEvent(name, data) {
    if (!this.root || data?.task_id !== this.id) return;
    if (name === "task_deleted") {
      this.markGone(t("detail.deleted"));
      return;
    }
    if (!this.task) {
      this.early = [name, data]; // each event carries the whole state: the latest will do
      return;
    }
    mergeEvent(this.task, data);
    if (Array.isArray(data.files)) this.task.files = data.files;
    this.paint();
    if (name !== "task_progress") {
      this.reloadSoon(); // files and times come with the task
      clearTimeout(this.settleTimer);
      this.settleTimer = setTimeout(() => this.load(), SETTLE_DELAY);
    }
    else if (!data.files && Date.now() - this.lastLoad > RELOAD_EVERY) this.reloadSoon(0);
  }

  // -- the page ---------------------------------------------------------------------------

  render() {
    const p = {};
    this.parts = p;
    p.heading = h("h1", { class: "task-title" });
    p.badge = badge("pending");
    p.id = h("code", { class: "task-id" }, this.id);
    p.message = h("p", { class: "message" });
    p.failure = h("div", { class: "failure", role: "alert", hidden: true });
    // Two live regions, each keeping its role: news is polite, a refusal or an error is an alert.
    p.notice = h("p", { class: "notice", role: "status" });
    p.alert = h("p", { class: "alert error", role: "alert" });
    p.bar = progressBar(t("col.progress"));
    p.size = h("dd", { class: "num" });
    p.speed = h("dd", { class: "num" });
    p.eta = h("dd", { class: "num" });
    p.files = h("dd", { class: "num" });
    p.created = h("dd", {});
    p.updated = h("dd", {});
    p.completed = h("dd", {});
    p.priority = h("dd", { class: "num" });
    p.limit = h("dd", { class: "num" });
    const figure = (label, dd) => h("div", {}, h("dt", {}, label), dd);

    // The draft: its folder (copy) and the zip.
    p.draftPath = h("code", { class: "draft-path" });
    p.copy = h("button", { type: "button", class: "secondary", onclick: () => this.copyPath() }, t("detail.copy"));
    p.zipRoot = h("input", { id: uid("root"), type: "text", maxlength: "1024", spellcheck: "false", placeholder: "C:\\Users\\…\\com.lveditor.draft" });
    p.zip = h("button", { type: "button", onclick: () => this.downloadZip() }, t("detail.zip"));
    p.draft = h(
      "section",
      { class: "card draft", "aria-label": t("detail.draft") },
      h("h2", {}, t("detail.draft")),
      h("div", { class: "draft-line" }, p.draftPath, p.copy),
      h(
        "div",
        { class: "zip-line" },
        h("div", { class: "field" }, h("label", { for: p.zipRoot.id }, t("detail.zipRoot")), p.zipRoot),
        p.zip,
      ),
    );

    // The controls.
    const button = (key, cls, handler) => h("button", { type: "button", class: cls, dataset: { action: key }, onclick: handler }, t(`action.${key}`));
    p.pause = button("pause", "", () => this.act("pause", () => api.post(this.path("/pause"))));
    p.resume = button("resume", "", () => this.act("resume", () => api.post(this.path("/resume"))));
    p.keepFiles = h("input", { type: "checkbox", id: uid("keep") });
    p.cancel = button("cancel", "danger", () =>
      this.act("cancel", () => api.post(this.path("/cancel"), undefined, { query: p.keepFiles.checked ? { keep_files: "true" } : {} })),
    );
    p.retry = button("retry", "", () => this.retry());
    p.regenerate = button("regenerate", "", () => this.act("regenerate", () => api.post(this.path("/regenerate"))));
    p.delete = button("delete", "danger", () => this.remove());
    p.priorityError = h("span", { id: uid("prio-err"), class: "error field-error", role: "alert" });
    p.priorityInput = h("input", {
      id: uid("prio"),
      type: "number",
      step: "1",
      inputmode: "numeric",
      class: "num",
      "aria-describedby": p.priorityError.id,
      oninput: () => this.priorityProblem(null),
    });
    p.prioritySet = h("button", { type: "submit", class: "secondary" }, t("common.set"));
    p.limitInput = h("input", { id: uid("lim"), type: "text", class: "num", placeholder: t("detail.limitHint"), spellcheck: "false", autocomplete: "off" });
    p.limitSet = h("button", { type: "submit", class: "secondary" }, t("common.set"));
    const onSubmit = (fn) => (event) => {
      event.preventDefault();
      fn();
    };
    const controls = h(
      "section",
      { class: "card controls", "aria-label": t("detail.controls") },
      h("h2", {}, t("detail.controls")),
      h(
        "div",
        { class: "buttons" },
        p.pause,
        p.resume,
        h("span", { class: "group" }, p.cancel, h("span", { class: "check" }, p.keepFiles, h("label", { for: p.keepFiles.id }, t("detail.keepFiles")))),
        p.retry,
        p.regenerate,
        p.delete,
      ),
      h(
        "div",
        { class: "settings-line" },
        h(
          "form",
          // novalidate: 1.5 gets the page's message at the field, as an empty field does,
          // rather than the browser's bubble.
          { class: "inline-form", novalidate: true, onsubmit: onSubmit(() => this.setPriority()) },
          h("label", { for: p.priorityInput.id }, t("detail.priority")),
          p.priorityInput,
          p.prioritySet,
          p.priorityError,
        ),
        h(
          "form",
          { class: "inline-form", onsubmit: onSubmit(() => this.setLimit()) },
          h("label", { for: p.limitInput.id }, t("detail.limit")),
          p.limitInput,
          p.limitSet,
        ),
      ),
      h("p", { class: "hint" }, t("detail.retryHint")),
    );

    // The files.
    p.fileBody = h("tbody", {});
    p.more = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => this.showMore() });
    const th = (key, cls) => h("th", { scope: "col", class: cls || null }, t(key));
    const files = h(
      "section",
      { class: "card files", "aria-label": t("detail.files") },
      h("h2", {}, t("detail.files")),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "file-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              th("file.name"),
              th("file.url"),
              th("col.progress"),
              th("col.size", "num"),
              th("col.status"),
              th("file.attempts", "num"),
              th("file.nextRetry"),
              th("file.error"),
            ),
          ),
          p.fileBody,
        ),
      ),
      p.more,
    );

    return h(
      "section",
      { class: "view detail-view" },
      h("p", { class: "back" }, h("a", { href: "#/" }, t("detail.back"))),
      h("div", { class: "detail-head" }, p.heading, p.badge),
      h("p", { class: "sub" }, p.id),
      p.message,
      p.failure,
      h("div", { class: "notices" }, p.notice, p.alert),
      h(
        "section",
        { class: "card figures", "aria-label": t("detail.progress") },
        p.bar.el,
        h(
          "dl",
          { class: "figures-grid" },
          figure(t("col.size"), p.size),
          figure(t("col.speed"), p.speed),
          figure(t("col.eta"), p.eta),
          figure(t("col.files"), p.files),
          figure(t("detail.priority"), p.priority),
          figure(t("detail.limit"), p.limit),
          figure(t("col.created"), p.created),
          figure(t("detail.updated"), p.updated),
          figure(t("detail.completed"), p.completed),
        ),
      ),
      controls,
      p.draft,
      files,
    );
  }

  paint() {
    const task = this.task;
    const p = this.parts;
    if (!task || !this.root) return;
    const prog = task.progress || {};
    setText(p.heading, task.title || t("list.untitled"));
    p.heading.classList.toggle("untitled", !task.title);
    document.title = `${task.title || task.task_id.slice(0, 8)} · draftdl`;
    setBadge(p.badge, task.status);
    setText(p.message, task.message);
    const failed = task.status === "failed" && task.error_message;
    p.failure.hidden = !failed;
    if (failed) {
      const lines = task.error_message.split("\n");
      p.failure.replaceChildren(h("strong", {}, t("detail.failed")), ...lines.map((line) => h("p", {}, line)));
    }
    setProgress(p.bar, prog.progress_percent, task.status);
    setText(p.size, fmt.sizes(prog.downloaded_size, prog.total_size));
    const moving = task.status === "downloading";
    setText(p.speed, moving ? fmt.speed(prog.download_speed) : fmt.DASH);
    setText(p.eta, moving ? fmt.eta(prog.eta_seconds) : fmt.DASH);
    const failures = prog.failed_files ? ` · ${t("list.failed", { n: prog.failed_files })}` : "";
    setText(p.files, `${t("list.files", { done: prog.completed_files, total: prog.total_files })}${failures}`);
    setText(p.priority, String(task.priority));
    setText(p.limit, task.max_download_limit || t("detail.noLimit"));
    setText(p.created, fmt.dateTime(task.created_at));
    setText(p.updated, fmt.dateTime(task.updated_at));
    setText(p.completed, fmt.dateTime(task.completed_at));
    if (document.activeElement !== p.priorityInput && p.priorityInput.value !== String(task.priority)) {
      p.priorityInput.value = String(task.priority); // and a refusal of what was typed goes with it
      this.priorityProblem(null);
    }
    if (document.activeElement !== p.limitInput && !p.limitInput.dataset.dirty) {
      p.limitInput.value = task.max_download_limit || "";
    }

    setText(p.draftPath, task.draft_path || t("detail.noDraft"));
    p.draftPath.classList.toggle("muted", !task.draft_path);
    this.updateButtons();
    if (Array.isArray(task.files)) this.paintFiles(task.files);
  }

  updateButtons() {
    const task = this.task;
    const p = this.parts;
    const s = this.gone || !task ? null : task.status;
    const off = (check) => this.busy || s === null || !check(s);
    p.pause.disabled = off(allowed.pause);
    p.resume.disabled = off(allowed.resume);
    p.cancel.disabled = off(allowed.cancel);
    p.keepFiles.disabled = p.cancel.disabled;
    p.retry.disabled = off(allowed.retry);
    p.regenerate.disabled = off(allowed.regenerate);
    p.delete.disabled = off(allowed.delete);
    const change = off(allowed.change);
    for (const el of [p.priorityInput, p.prioritySet, p.limitInput, p.limitSet]) el.disabled = change;
    p.copy.disabled = !task?.draft_path;
    // Only a completed task's draft is the one to take: while a rebuild runs (processing, or
    // pending/downloading what is missing) or after one failed, draft_path still names the
    // old folder, and one that has none answers 409.
    p.zip.disabled = this.busy || s !== "completed" || !task?.draft_path;
    p.zipRoot.disabled = p.zip.disabled;
    for (const row of this.fileRows) row.replace.disabled = p.retry.disabled;
  }

  // -- files ------------------------------------------------------------------------------

  paintFiles(files) {
    const count = Math.min(files.length, this.shownFiles);
    while (this.fileRows.length > count) this.fileRows.pop().el.remove();
    while (this.fileRows.length < count) {
      const row = this.makeFileRow();
      this.fileRows.push(row);
      this.parts.fileBody.append(row.el);
    }
    for (let i = 0; i < count; i += 1) this.paintFile(this.fileRows[i], files[i]);
    const rest = files.length - count;
    this.parts.more.hidden = rest <= 0;
    if (rest > 0) setText(this.parts.more, t("detail.more", { n: Math.min(rest, FILE_PAGE), total: files.length }));
    this.updateButtons();
  }

  showMore() {
    this.shownFiles += FILE_PAGE;
    if (this.task?.files) this.paintFiles(this.task.files);
  }

  makeFileRow() {
    const td = (key, cls, ...content) => h("td", { class: cls || null, dataset: { label: t(key) } }, content);
    const name = h("span", { class: "file-name" });
    const url = h("span", { class: "url" });
    const replaceId = uid("url");
    const replaceLabel = h("label", { for: replaceId, class: "visually-hidden" });
    const replace = h("input", { id: replaceId, type: "url", class: "replace", spellcheck: "false", autocomplete: "off", placeholder: t("file.newUrl") });
    const replaceError = h("span", { class: "error field-error", role: "alert" });
    const replaceBox = h("span", { class: "replace-box", hidden: true }, replaceLabel, replace, replaceError);
    const bar = progressBar(t("col.progress"));
    const size = h("span", { class: "num" });
    const status = h("span", { class: "badge file-badge" });
    const attempts = h("span", { class: "num" });
    const next = h("span", {});
    const error = h("span", { class: "file-error" });
    const el = h(
      "tr",
      { class: "file-row" },
      td("file.name", "c-name", name),
      td("file.url", "c-url", url, replaceBox),
      td("col.progress", "c-bar", bar.el),
      td("col.size", "num c-size", size),
      td("col.status", "c-status", status),
      td("file.attempts", "num c-attempts", attempts),
      td("file.nextRetry", "c-next", next),
      td("file.error", "c-error", error),
    );
    return { el, name, url, replace, replaceBox, replaceLabel, replaceError, bar, size, status, attempts, next, error, file: null };
  }

  paintFile(row, file) {
    row.file = file;
    setText(row.name, file.file_name);
    setAttr(row.bar.bar, "aria-label", t("file.progressOf", { name: file.file_name }));
    setText(row.url, file.url);
    setAttr(row.el, "data-status", file.status);
    const percent = file.status === "complete" ? 100 : file.total_length > 0 ? (100 * file.completed_length) / file.total_length : 0;
    setProgress(row.bar, percent, file.status);
    setText(row.size, fmt.sizes(file.completed_length, file.total_length));
    setBadge(row.status, file.status, "fstatus");
    setText(row.attempts, String(file.attempts));
    setText(row.next, file.next_retry_at ? fmt.relative(file.next_retry_at) : fmt.DASH);
    setAttr(row.next, "title", file.next_retry_at ? fmt.dateTime(file.next_retry_at) : null);
    setText(row.error, file.error_message || "");
    // A replacement link, for the files a retry downloads again.
    const replaceable = allowed.retry(this.task.status) && file.status !== "complete";
    row.replaceBox.hidden = !replaceable;
    setText(row.replaceLabel, t("file.newUrlFor", { name: file.file_name }));
    if (!replaceable) setText(row.replaceError, "");
  }

  // -- actions ----------------------------------------------------------------------------

  say(message, isError = false) {
    if (!this.parts) return;
    setText(this.parts.notice, isError ? "" : message);
    setText(this.parts.alert, isError ? message : "");
  }

  markGone(message) {
    this.gone = true;
    this.say(message, true);
    if (this.parts) this.updateButtons();
  }

  /** Runs a control: its buttons off meanwhile, the answer's message (or the refusal's) shown,
   * and the task read again. */
  async act(key, call) {
    if (this.busy) return null;
    this.busy = true;
    this.updateButtons();
    this.say(t("common.working"));
    let answer = null;
    try {
      answer = await call();
      this.say(answer?.message || t(`done.${key}`));
    } catch (err) {
      this.say(err.message, true);
      answer = err;
    } finally {
      this.busy = false;
      if (this.root) {
        this.updateButtons();
        if (!this.gone) {
          this.load();
          clearTimeout(this.settleTimer);
          this.settleTimer = setTimeout(() => this.load(), SETTLE_DELAY);
        }
      }
    }
    return answer;
  }

  async retry() {
    const urls = {};
    for (const row of this.fileRows) {
      setText(row.replaceError, "");
      const value = row.replace.value.trim();
      if (!row.replaceBox.hidden && value && row.file) urls[row.file.url] = value;
    }
    const result = await this.act("retry", () => api.post(this.path("/retry"), { urls }));
    if (result instanceof api.ApiError) {
      for (const problem of result.problems) {
        const loc = problem.loc || [];
        const row = loc[1] === "urls" ? this.fileRows.find((r) => r.file?.url === loc[2]) : null;
        if (row) setText(row.replaceError, problem.msg);
      }
    } else if (result) {
      for (const row of this.fileRows) row.replace.value = "";
    }
  }

  /** The priority field's own message (null: none). */
  priorityProblem(message) {
    setText(this.parts.priorityError, message);
    setAttr(this.parts.priorityInput, "aria-invalid", message ? "true" : null);
  }

  setPriority() {
    // An empty field is no priority (Number("") would be 0), nor is 1.5 or 1e3: no request.
    const raw = this.parts.priorityInput.value.trim();
    const value = Number(raw);
    if (!/^[+-]?\d+$/.test(raw) || !Number.isSafeInteger(value)) {
      this.priorityProblem(t("detail.badPriority"));
      this.parts.priorityInput.focus();
      return;
    }
    this.priorityProblem(null);
    this.act("priority", () => api.patch(this.path(), { priority: value }).then(() => ({ message: t("done.priority", { n: value }) })));
  }

  setLimit() {
    const value = this.parts.limitInput.value.trim();
    this.act("limit", () =>
      api.patch(this.path(), { max_download_limit: value || null }).then((task) => ({
        message: task.max_download_limit ? t("done.limit", { limit: task.max_download_limit }) : t("done.noLimit"),
      })),
    );
  }

  async remove() {
    const options = await confirmDialog({
      title: t("delete.title"),
      message: t("delete.text", { title: this.task?.title || this.id }),
      confirm: t("common.delete"),
      options: [
        { name: "files", label: t("delete.files") },
        { name: "draft", label: t("delete.draft") },
      ],
    });
    if (!options) return;
    const query = {};
    if (options.files) query.files = "true";
    if (options.draft) query.draft = "true";
    const answer = await this.act("delete", () => api.del(this.path(), query));
    if (answer && !(answer instanceof api.ApiError)) {
      this.gone = true;
      toast(answer.message || t("done.delete"));
      this.navigate("#/");
    }
  }

  async copyPath() {
    const path = this.task?.draft_path;
    if (!path) return;
    toast((await copyText(path)) ? t("detail.copied") : t("detail.copyFailed"));
  }

  async downloadZip() {
    const root = this.parts.zipRoot.value.trim();
    const query = root ? { root } : {};
    if (!api.token()) {
      // No token: a plain link, which streams to disk instead of holding the zip in memory.
      const link = h("a", { href: api.url(this.path("/draft.zip"), query).href, download: "" });
      document.body.append(link);
      link.click();
      link.remove();
      return;
    }
    this.busy = true;
    this.updateButtons();
    this.say(t("detail.zipping"));
    try {
      const { blob, filename } = await api.download(this.path("/draft.zip"), query);
      const href = URL.createObjectURL(blob);
      const link = h("a", { href, download: filename });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(href), 60_000);
      this.say(t("detail.zipped", { name: filename }));
    } catch (err) {
      this.say(err.message, true);
    } finally {
      this.busy = false;
      if (this.root) this.updateButtons();
    }
  }
}


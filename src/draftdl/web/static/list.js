// The task list: newest first, filtered by status (several) and title, paged; every row
// follows the all-tasks stream in place. Rows can be selected for bulk actions.

import * as api from "./api.js";
import { h, hidden, setAttr, setText, uid } from "./dom.js";
import * as fmt from "./format.js";
import { t } from "./i18n.js";
import { allowed, FINAL, STATUSES } from "./states.js";
import { badge, confirmDialog, progressBar, setBadge, setProgress } from "./ui.js";

const PAGE_SIZES = [10, 20, 50, 100];
const REFETCH_DELAY = 300; // ms: status events of unknown tasks come in bursts
const SEARCH_DELAY = 300;
const EVENT_FIELDS = [
  "status",
  "priority",
  "max_download_limit",
  "message",
  "progress",
  "draft_path",
  "error_message",
  "updated_at",
];

/** Keeps the newer of two views of a task: a list answer may be older than an event. */
export function newer(current, incoming) {
  const a = Date.parse(current?.updated_at || "");
  const b = Date.parse(incoming?.updated_at || "");
  return Number.isNaN(a) || Number.isNaN(b) || b >= a;
}

export function mergeEvent(task, data) {
  for (const key of EVENT_FIELDS) if (key in data) task[key] = data[key];
}


export class ListView {
  constructor() {
    this.statuses = new Set();
    this.q = "";
    this.limit = 20;
    this.offset = 0;
    this.total = 0;
    this.rows = new Map(); // task id → {task, el, parts}
    this.selected = new Set();
    this.seq = 0;
    this.loaded = false;
    this.early = new Map(); // task id → [name, data]: the latest event heard before the first answer
    this.root = null;
    this.refetchTimer = null;
    this.searchTimer = null;
  }

  title() {
    return t("nav.tasks");
  }

  mount(container) {
    this.rows.clear();
    this.early.clear();
    this.loaded = false;
    this.root = this.render();
    container.replaceChildren(this.root);
    this.load();
  }

  unmount() {
    clearTimeout(this.refetchTimer);
    this.refetchTimer = null;
    clearTimeout(this.searchTimer);
    this.root = null;
    this.rows.clear();
    this.early.clear();
  }

  refresh() {
    this.load();
  }

  // -- the page ---------------------------------------------------------------------------

  render() {
    const searchId = uid("q");
    this.search = h("input", {
      id: searchId,
      type: "search",
      value: this.q,
      maxlength: "200",
      autocomplete: "off",
      oninput: () => {
        clearTimeout(this.searchTimer);
        this.searchTimer = setTimeout(() => {
          this.q = this.search.value.trim();
          this.offset = 0;
          this.load();
        }, SEARCH_DELAY);
      },
    });
    const chips = STATUSES.map((status) => {
      const id = uid("st");
      const box = h("input", {
        type: "checkbox",
        id,
        value: status,
        checked: this.statuses.has(status),
        onchange: () => {
          if (box.checked) this.statuses.add(status);
          else this.statuses.delete(status);
          this.offset = 0;
          this.load();
        },
      });
      return h("span", { class: "chip", dataset: { status } }, box, h("label", { for: id }, t(`status.${status}`)));
    });
    const sizeId = uid("size");
    const size = h(
      "select",
      {
        id: sizeId,
        onchange: () => {
          this.limit = Number(size.value);
          this.offset = 0;
          this.load();
        },
      },
      PAGE_SIZES.map((n) => h("option", { value: String(n), selected: n === this.limit }, String(n))),
    );
    const filters = h(
      "section",
      { class: "filters", "aria-label": t("list.filters") },
      h("div", { class: "field search" }, h("label", { for: searchId }, t("list.search")), this.search),
      h("fieldset", { class: "status-filter" }, h("legend", {}, t("list.status")), chips),
      h("div", { class: "field per-page" }, h("label", { for: sizeId }, t("list.perPage")), size),
    );

    const allId = uid("all");
    this.selectAll = h("input", {
      type: "checkbox",
      id: allId,
      onchange: () => {
        for (const [id, row] of this.rows) {
          if (this.selectAll.checked) this.selected.add(id);
          else this.selected.delete(id);
          row.parts.select.checked = this.selectAll.checked;
        }
        this.updateBulk();
      },
    });
    this.selCount = h("span", { class: "sel-count num" });
    this.bulkRetry = h("button", { type: "button", onclick: () => this.bulk("retry") });
    this.bulkCancel = h("button", { type: "button", onclick: () => this.bulk("cancel") });
    this.bulkDelete = h("button", { type: "button", class: "danger", onclick: () => this.bulk("delete") });
    this.bulkResult = h("p", { class: "bulk-result", role: "status" });
    const bulk = h(
      "div",
      { class: "bulk", role: "group", "aria-label": t("bulk.label") },
      h("span", { class: "check" }, this.selectAll, h("label", { for: allId }, t("bulk.selectAll"))),
      this.selCount,
      h("span", { class: "bulk-buttons" }, this.bulkRetry, this.bulkCancel, this.bulkDelete),
    );

    this.error = h("p", { class: "error", role: "alert", hidden: true });
    this.list = h("ul", { class: "tasks", "aria-label": t("list.label") });
    this.empty = h("p", { class: "empty", hidden: true }, t("list.empty"));
    this.loading = h("p", { class: "empty" }, t("common.loading"));
    this.prev = h("button", { type: "button", class: "secondary", onclick: () => this.page(-1) }, t("list.newer"));
    this.next = h("button", { type: "button", class: "secondary", onclick: () => this.page(1) }, t("list.older"));
    this.range = h("span", { class: "range num", "aria-live": "polite" });
    const pager = h("nav", { class: "pager", "aria-label": t("list.pages") }, this.prev, this.range, this.next);

    const head = h(
      "div",
      { class: "task-head", "aria-hidden": "true" },
      h("span", {}),
      h("span", {}, t("col.title")),
      h("span", {}, t("col.status")),
      h("span", {}, t("col.progress")),
      h("span", { class: "num" }, t("col.size")),
      h("span", { class: "num" }, t("col.speed")),
      h("span", { class: "num" }, t("col.eta")),
      h("span", { class: "num" }, t("col.files")),
    );
    this.updateBulk();
    return h(
      "section",
      { class: "view list-view" },
      h("h1", {}, t("list.heading")),
      filters,
      bulk,
      this.bulkResult,
      this.error,
      head,
      this.list,
      this.loading,
      this.empty,
      pager,
    );
  }

  page(step) {
    const offset = this.offset + step * this.limit;
    if (offset < 0 || (step > 0 && offset >= this.total)) return;
    this.offset = offset;
    this.load();
  }

  // -- data -------------------------------------------------------------------------------

  async load() {
    const seq = ++this.seq;
    const query = { limit: this.limit, offset: this.offset };
    const wanted = STATUSES.filter((s) => this.statuses.has(s));
    if (wanted.length) query.status = wanted.join(",");
    if (this.q) query.q = this.q;
    try {
      const data = await api.get("api/tasks", query);
      if (seq !== this.seq || !this.root) return;
      if (data.tasks.length === 0 && data.total > 0 && this.offset > 0) {
        this.offset = Math.floor((data.total - 1) / this.limit) * this.limit; // past the end
        this.load();
        return;
      }
      this.error.hidden = true;
      this.show(data);
    } catch (err) {
      if (seq !== this.seq || !this.root) return;
      setText(this.error, err.message);
      this.error.hidden = false;
      this.loading.hidden = true;
    }
  }

  /** Status events of tasks the page does not show (new ones, moved by a filter) come in
   * bursts: one read for all of them, at most REFETCH_DELAY after the first. The timer is
   * not restarted by the events after it, so a steady stream of them still gets reads. */
  later() {
    if (this.refetchTimer !== null) return;
    this.refetchTimer = setTimeout(() => {
      this.refetchTimer = null;
      if (this.root) this.load();
    }, REFETCH_DELAY);
  }

  show(data) {
    this.total = data.total;
    const rows = new Map();
    const elements = data.tasks.map((task) => {
      let row = this.rows.get(task.task_id);
      if (row) {
        if (newer(row.task, task)) row.task = task;
        else row.task = { ...task, ...pick(row.task) };
        this.paint(row);
      } else {
        row = this.makeRow(task);
      }
      rows.set(task.task_id, row);
      return row.el;
    });
    this.rows = rows;
    // Keyed in place: rows that stay are not moved, so focus and selection stay with them.
    let cursor = this.list.firstChild;
    for (const el of elements) {
      if (el === cursor) cursor = cursor.nextSibling;
      else this.list.insertBefore(el, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    for (const id of [...this.selected]) if (!rows.has(id)) this.selected.delete(id);
    const first = !this.loaded;
    this.loaded = true;
    this.loading.hidden = true;
    this.empty.hidden = rows.size > 0;
    const from = rows.size ? this.offset + 1 : 0;
    setText(this.range, t("list.range", { first: from, last: this.offset + rows.size, total: this.total }));
    this.prev.disabled = this.offset === 0;
    this.next.disabled = this.offset + this.limit >= this.total;
    this.updateBulk();
    if (first) this.replay();
  }

  /** The events heard while the first answer was on its way, on top of it: each task's
   * latest, unless the answer is newer. */
  replay() {
    const early = [...this.early.values()];
    this.early.clear();
    for (const [name, data] of early) {
      const row = this.rows.get(data.task_id);
      if (row && name !== "task_deleted" && !newer(row.task, data)) continue; // the answer is ahead
      this.onEvent(name, data);
    }
  }

  onEvent(name, data) {
    if (!this.root || !data?.task_id) return;
    if (!this.loaded) {
      // Nothing drawn yet to update: keep the latest (each event carries the whole state).
      this.early.delete(data.task_id);
      this.early.set(data.task_id, [name, data]);
      return;
    }
    const row = this.rows.get(data.task_id);
    if (name === "task_deleted") {
      if (row) {
        row.el.remove();
        this.rows.delete(data.task_id);
        this.selected.delete(data.task_id);
        this.updateBulk();
      }
      this.later(); // the page fills up again, the total shrinks
      return;
    }
    if (!row) {
      if (name !== "task_progress") this.later(); // a new task, or one a filter now shows
      return;
    }
    const before = row.task.status;
    mergeEvent(row.task, data);
    this.paint(row);
    if (data.status && data.status !== before) {
      if (this.statuses.size && !this.statuses.has(data.status)) this.later(); // filtered out
      this.updateBulk();
    }
  }

  // -- rows -------------------------------------------------------------------------------

  makeRow(task) {
    const id = task.task_id;
    const selectId = uid("sel");
    const select = h("input", {
      type: "checkbox",
      id: selectId,
      checked: this.selected.has(id),
      onchange: () => {
        if (select.checked) this.selected.add(id);
        else this.selected.delete(id);
        this.updateBulk();
      },
    });
    const selectLabel = h("label", { for: selectId, class: "visually-hidden" });
    const title = h("a", { class: "title", href: `#/task/${encodeURIComponent(id)}` });
    const created = h("time", { class: "created num" });
    const sub = h("span", { class: "sub" }, h("code", {}, id.slice(0, 8)), " · ", hidden(`${t("col.created")}: `), created);
    const message = h("span", { class: "message" });
    const status = badge(task.status);
    const bar = progressBar(t("list.progressOf", { title: task.title || t("list.untitled") }));
    const size = h("span", { class: "num size" });
    const speed = h("span", { class: "num speed" });
    const eta = h("span", { class: "num eta" });
    const files = h("span", { class: "num files" });
    const failedCount = h("span", { class: "num failed-count" });
    const cell = (cls, label, ...content) => h("span", { class: cls }, h("span", { class: "lbl" }, `${label} `), content);
    const el = h(
      "li",
      { class: "task-row", dataset: { taskId: id } },
      h("span", { class: "pick" }, select, selectLabel),
      h("span", { class: "name" }, title, sub, message),
      h("span", { class: "state" }, status),
      h("span", { class: "progress" }, bar.el),
      cell("c-size", t("col.size"), size),
      cell("c-speed", t("col.speed"), speed),
      cell("c-eta", t("col.eta"), eta),
      cell("c-files", t("col.files"), files, failedCount),
    );
    const row = { task, el, parts: { select, selectLabel, title, message, status, bar, size, speed, eta, files, failedCount, created } };
    this.paint(row);
    return row;
  }

  paint(row) {
    const { task, parts } = row;
    const p = task.progress || {};
    const name = task.title || t("list.untitled");
    setText(parts.title, name);
    parts.title.classList.toggle("untitled", !task.title);
    setText(parts.selectLabel, t("list.select", { title: name }));
    setAttr(parts.bar.bar, "aria-label", t("list.progressOf", { title: name }));
    setText(parts.message, task.status === "failed" ? task.error_message || task.message : task.message);
    setBadge(parts.status, task.status);
    setAttr(row.el, "data-status", task.status);
    setProgress(parts.bar, p.progress_percent, task.status);
    setText(parts.size, fmt.sizes(p.downloaded_size, p.total_size));
    const moving = task.status === "downloading";
    setText(parts.speed, moving ? fmt.speed(p.download_speed) : fmt.DASH);
    setText(parts.eta, moving ? fmt.eta(p.eta_seconds) : fmt.DASH);
    setText(parts.files, t("list.files", { done: p.completed_files ?? 0, total: p.total_files ?? 0 }));
    setText(parts.failedCount, p.failed_files > 0 ? t("list.failed", { n: p.failed_files }) : "");
    parts.failedCount.hidden = !(p.failed_files > 0);
    setAttr(parts.created, "datetime", task.created_at);
    setText(parts.created, fmt.dateTime(task.created_at));
  }

  // -- bulk -------------------------------------------------------------------------------

  chosen(test) {
    return [...this.selected].map((id) => this.rows.get(id)?.task).filter((task) => task && test(task));
  }

  updateBulk() {
    if (!this.bulkRetry) return;
    const failed = this.chosen((task) => task.status === "failed" && allowed.retry(task.status));
    const running = this.chosen((task) => allowed.cancel(task.status));
    const finished = this.chosen((task) => FINAL.has(task.status));
    setText(this.bulkRetry, t("bulk.retry", { n: failed.length }));
    setText(this.bulkCancel, t("bulk.cancel", { n: running.length }));
    setText(this.bulkDelete, t("bulk.delete", { n: finished.length }));
    this.bulkRetry.disabled = failed.length === 0;
    this.bulkCancel.disabled = running.length === 0;
    this.bulkDelete.disabled = finished.length === 0;
    setText(this.selCount, t("bulk.selected", { n: this.selected.size }));
    const all = this.rows.size > 0 && [...this.rows.keys()].every((id) => this.selected.has(id));
    this.selectAll.checked = all;
    this.selectAll.indeterminate = !all && this.selected.size > 0;
  }

  async bulk(kind) {
    const id = (task) => encodeURIComponent(task.task_id);
    const plans = {
      retry: [(task) => task.status === "failed", (task) => api.post(`api/tasks/${id(task)}/retry`, {})],
      cancel: [(task) => allowed.cancel(task.status), (task) => api.post(`api/tasks/${id(task)}/cancel`)],
      delete: [(task) => FINAL.has(task.status), (task) => api.del(`api/tasks/${id(task)}`, this.deleteQuery)],
    };
    const [test, act] = plans[kind];
    const tasks = this.chosen(test);
    if (!tasks.length) return;
    this.deleteQuery = {};
    if (kind === "delete") {
      const options = await confirmDialog({
        title: t("bulk.deleteTitle", { n: tasks.length }),
        message: t("bulk.deleteText"),
        confirm: t("common.delete"),
        options: [{ name: "files", label: t("delete.files") }],
      });
      if (!options) return;
      this.deleteQuery = options.files ? { files: "true" } : {};
    }
    const failures = [];
    let done = 0;
    for (const task of tasks) {
      try {
        await act(task);
        done += 1;
        this.selected.delete(task.task_id);
        const row = this.rows.get(task.task_id);
        if (row) row.parts.select.checked = false;
      } catch (err) {
        failures.push(`${task.title || task.task_id.slice(0, 8)}: ${err.message}`);
      }
    }
    const summary = t(`bulk.done.${kind}`, { n: done });
    setText(this.bulkResult, failures.length ? `${summary} ${t("bulk.refused", { n: failures.length })} ${failures.join("; ")}` : summary);
    this.bulkResult.classList.toggle("error", failures.length > 0);
    this.updateBulk();
    this.load();
  }
}

function pick(task) {
  const out = {};
  for (const key of EVENT_FIELDS) if (key in task) out[key] = task[key];
  return out;
}

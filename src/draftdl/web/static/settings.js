// Settings and health: the global speed cap (applied at once, kept across restarts) and what
// GET api/health says (aria2c, database, disk, drafts root and why), read again every 5 s.

import * as api from "./api.js";
import { append, h, setAttr, setText, uid } from "./dom.js";
import * as fmt from "./format.js";
import { t } from "./i18n.js";

const HEALTH_EVERY = 5000; // ms

export class SettingsView {
  constructor() {
    this.root = null;
    this.timer = null;
  }

  title() {
    return t("nav.settings");
  }

  mount(container) {
    this.root = this.render();
    container.replaceChildren(this.root);
    this.loadLimit();
    this.loadHealth();
  }

  unmount() {
    clearTimeout(this.timer);
    this.root = null;
  }

  refresh() {
    this.loadLimit();
    this.loadHealth();
  }

  onEvent() {}

  render() {
    const limitId = uid("glim");
    this.limitInput = h("input", {
      id: limitId,
      type: "text",
      class: "num",
      spellcheck: "false",
      autocomplete: "off",
      "aria-describedby": `${limitId}-hint`,
      oninput: () => {
        this.limitInput.dataset.dirty = "1";
      },
    });
    this.limitNow = h("span", { class: "num current-limit" });
    this.limitStatus = h("p", { class: "notice", role: "status" });
    const limitForm = h(
      "form",
      {
        class: "inline-form",
        onsubmit: (event) => {
          event.preventDefault();
          this.saveLimit();
        },
      },
      h("label", { for: limitId }, t("settings.limit")),
      this.limitInput,
      h("button", { type: "submit", class: "primary" }, t("common.save")),
    );
    // Only the status line is live (said when it changes); the figures below it are drawn
    // again every 5 s and would be read out each time.
    this.healthBadge = h("span", { class: "badge" });
    this.healthVersion = h("span", { class: "muted" });
    this.healthStatus = h("p", { class: "health-status", role: "status" }, this.healthBadge, " ", this.healthVersion);
    this.health = h("div", { class: "health" }, h("p", { class: "empty" }, t("common.loading")));
    this.healthError = h("p", { class: "error", role: "alert", hidden: true });
    return h(
      "section",
      { class: "view settings-view" },
      h("h1", {}, t("settings.heading")),
      h(
        "section",
        { class: "card" },
        h("h2", {}, t("settings.speed")),
        h("p", {}, t("settings.current"), " ", this.limitNow),
        limitForm,
        h("p", { class: "hint", id: `${limitId}-hint` }, t("settings.limitHint")),
        this.limitStatus,
      ),
      h(
        "section",
        { class: "card" },
        h("div", { class: "card-head" }, h("h2", {}, t("settings.health")), h("button", { type: "button", class: "secondary", onclick: () => this.loadHealth() }, t("common.refresh"))),
        this.healthError,
        this.healthStatus,
        this.health,
      ),
    );
  }

  showLimit(value) {
    setText(this.limitNow, !value || value === "0" ? t("settings.noLimit") : `${value}`);
    if (document.activeElement !== this.limitInput && !this.limitInput.dataset.dirty) this.limitInput.value = value || "0";
  }

  async loadLimit() {
    try {
      const data = await api.get("api/settings/limits");
      if (this.root) this.showLimit(String(data.max_overall_download_limit));
    } catch (err) {
      if (this.root) setText(this.limitStatus, err.message);
    }
  }

  async saveLimit() {
    const value = this.limitInput.value.trim() || "0";
    this.limitStatus.classList.remove("error");
    setText(this.limitStatus, t("common.working"));
    try {
      const data = await api.put("api/settings/limits", { max_overall_download_limit: value });
      delete this.limitInput.dataset.dirty;
      this.showLimit(String(data.max_overall_download_limit));
      setText(this.limitStatus, t("settings.saved"));
    } catch (err) {
      this.limitStatus.classList.add("error");
      const detail = err.problems?.length ? err.problems.map((p) => p.msg).join("; ") : err.message;
      setText(this.limitStatus, detail);
    }
  }

  async loadHealth() {
    clearTimeout(this.timer);
    try {
      const data = await api.get("api/health", undefined, { accept: [503] }); // 503: same body
      if (!this.root) return;
      this.healthError.hidden = true;
      this.showHealth(data);
    } catch (err) {
      if (!this.root) return;
      setText(this.healthError, err.message);
      this.healthError.hidden = false;
    } finally {
      if (this.root) this.timer = setTimeout(() => this.loadHealth(), HEALTH_EVERY);
    }
  }

  showHealth(data) {
    if (!data || typeof data !== "object") return;
    const yes = (ok) => h("span", { class: ok ? "ok" : "bad" }, ok ? t("health.yes") : t("health.no"));
    const row = (label, ...value) => h("div", {}, h("dt", {}, label), h("dd", {}, value));
    const aria2 = data.aria2 || {};
    const disk = data.disk || {};
    const drafts = data.drafts || {};
    const tasks = data.tasks || {};
    const problems = Array.isArray(data.problems) ? data.problems : [];
    const ok = data.status === "ok";
    setAttr(this.healthBadge, "data-status", ok ? "completed" : "failed");
    setText(this.healthBadge, t(`health.${ok ? "ok" : "degraded"}`));
    setText(this.healthVersion, t("health.version", { version: data.version ?? "?" }));
    this.health.replaceChildren();
    append(
      this.health,
      [problems.length ? h("ul", { class: "problems" }, problems.map((p) => h("li", {}, p))) : null,
      h("h3", {}, "aria2"),
      h(
        "dl",
        { class: "pairs", dataset: { part: "aria2" } },
        row(t("health.running"), yes(Boolean(aria2.running))),
        row(t("health.state"), aria2.state ?? fmt.DASH),
        row(t("health.aria2Version"), h("span", { class: "aria2-version" }, aria2.version ?? fmt.DASH)),
        row(t("health.restarts"), h("span", { class: "num aria2-restarts" }, String(aria2.restarts ?? 0))),
        row(t("health.pid"), h("span", { class: "num" }, aria2.pid ?? fmt.DASH)),
        row(t("health.managed"), yes(Boolean(aria2.managed))),
        row(t("health.binary"), h("code", {}, aria2.binary ?? fmt.DASH), aria2.binary_source ? ` (${aria2.binary_source})` : ""),
        aria2.reason ? row(t("health.reason"), aria2.reason) : null,
      ),
      h("h3", {}, t("health.drafts")),
      h(
        "dl",
        { class: "pairs", dataset: { part: "drafts" } },
        row(t("health.root"), h("code", { class: "drafts-root" }, drafts.root ?? fmt.DASH)),
        row(t("health.why"), h("span", { class: "drafts-reason" }, drafts.reason ?? fmt.DASH)),
      ),
      h("h3", {}, t("health.system")),
      h(
        "dl",
        { class: "pairs" },
        row(t("health.database"), yes(Boolean(data.database?.ok)), data.database?.error ? ` ${data.database.error}` : ""),
        row(t("health.disk"), h("code", {}, disk.path ?? fmt.DASH)),
        row(t("health.free"), h("span", { class: "num" }, `${fmt.bytes(disk.free_bytes)} (${t("health.minimum")} ${fmt.bytes(disk.min_free_bytes)})`)),
        row(t("health.tasks"), h("span", { class: "num" }, t("health.taskCounts", { active: tasks.active ?? 0, max: tasks.max_active ?? 0, live: tasks.live ?? 0 }))),
      )],
    );
  }
}

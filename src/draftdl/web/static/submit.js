// Submitting a job: pasted or picked from a file, checked as JSON here, then by the server;
// its 422 is listed path by path ("materials[0].path: …"). On success the new task opens.

import * as api from "./api.js";
import { h, setText, uid } from "./dom.js";
import { t } from "./i18n.js";

const EXAMPLE = {
  ruleGroup: {
    id: "g",
    title: "demo",
    rules: [{ type: "clip", title: "clip", material_ids: ["m1"] }],
  },
  materials: [{ id: "m1", type: "video", path: "https://example.com/clip.mp4" }],
  testData: {
    tracks: [{ id: "v", type: "video" }],
    items: [{ type: "clip", data: { track: "v", start: 0, duration: 2 } }],
  },
  draft_config: {},
};

/** Where JSON.parse stopped, as line and column, from its message's position. */
function syntaxProblem(text, err) {
  const match = /position (\d+)/.exec(err.message);
  if (!match || /line \d+ column \d+/.test(err.message)) return err.message;
  const at = Number(match[1]);
  const before = text.slice(0, at).split("\n");
  return t("submit.syntaxAt", { line: before.length, column: before[before.length - 1].length + 1, message: err.message });
}

export class SubmitView {
  constructor({ navigate }) {
    this.navigate = navigate;
    this.text = "";
    this.root = null;
  }

  title() {
    return t("nav.submit");
  }

  mount(container) {
    this.root = this.render();
    container.replaceChildren(this.root);
  }

  unmount() {
    this.root = null;
  }

  refresh() {}

  onEvent() {}

  render() {
    const textId = uid("job");
    const fileId = uid("file");
    this.area = h("textarea", {
      id: textId,
      class: "job-text",
      rows: "16",
      spellcheck: "false",
      autocomplete: "off",
      "aria-describedby": `${textId}-hint`,
      value: this.text,
      oninput: () => {
        this.text = this.area.value;
      },
    });
    this.file = h("input", {
      id: fileId,
      type: "file",
      accept: "application/json,.json",
      onchange: () => this.pick(),
    });
    this.send = h("button", { type: "submit", class: "primary" }, t("submit.send"));
    this.status = h("p", { class: "notice", role: "status" });
    this.problems = h("ul", { class: "problems", "aria-label": t("submit.problems") });
    this.problemBox = h("div", { class: "problem-box", role: "alert", hidden: true }, h("strong", {}, t("submit.rejected")), this.problems);
    const example = h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          this.area.value = JSON.stringify(EXAMPLE, null, 2);
          this.text = this.area.value;
          this.area.focus();
        },
      },
      t("submit.example"),
    );
    const form = h(
      "form",
      {
        class: "submit-form",
        onsubmit: (event) => {
          event.preventDefault();
          this.submit();
        },
      },
      h("div", { class: "field" }, h("label", { for: textId }, t("submit.json")), this.area, h("p", { class: "hint", id: `${textId}-hint` }, t("submit.hint"))),
      this.problemBox,
      h("div", { class: "field" }, h("label", { for: fileId }, t("submit.file")), this.file),
      h("div", { class: "actions" }, this.send, example),
      this.status,
    );
    return h("section", { class: "view submit-view" }, h("h1", {}, t("submit.heading")), h("div", { class: "card" }, form));
  }

  async pick() {
    const file = this.file.files?.[0];
    if (!file) return;
    try {
      this.area.value = await file.text();
      this.text = this.area.value;
      this.showProblems([]);
      setText(this.status, t("submit.loaded", { name: file.name }));
    } catch (err) {
      this.showProblems([{ path: file.name, msg: err.message }]);
    }
  }

  showProblems(items) {
    this.problems.replaceChildren(
      ...items.map((item) =>
        h("li", { class: "problem", dataset: { path: item.path } }, h("code", { class: "path" }, item.path), ": ", h("span", { class: "msg" }, item.msg)),
      ),
    );
    this.problemBox.hidden = items.length === 0;
    this.area.setAttribute("aria-invalid", items.length ? "true" : "false");
  }

  async submit() {
    const text = this.area.value;
    this.text = text;
    setText(this.status, "");
    try {
      JSON.parse(text);
    } catch (err) {
      this.showProblems([{ path: t("submit.syntax"), msg: syntaxProblem(text, err) }]);
      this.area.focus();
      return;
    }
    this.showProblems([]);
    this.send.disabled = true;
    setText(this.status, t("common.working"));
    try {
      const answer = await api.request("POST", "api/tasks/submit", { raw: text }); // as written
      this.text = "";
      this.navigate(`#/task/${encodeURIComponent(answer.task_id)}`);
    } catch (err) {
      setText(this.status, "");
      if (err.problems?.length) {
        this.showProblems(err.problems.map((p) => ({ path: api.problemPath(p), msg: p.msg ?? "" })));
      } else {
        this.showProblems([{ path: t("submit.server"), msg: err.message }]);
      }
    } finally {
      if (this.root) this.send.disabled = false;
    }
  }
}

// The one all-tasks event stream (GET api/tasks/stream). It carries no snapshot: after each
// tasks_subscribed (the first, and after every reconnect) the views read the API again.
// Reconnects are ours, not the browser's: on an error the stream is closed, the server is
// probed with a plain request (which also brings up the token prompt on a 401), and only
// then opened again, backing off while the server is away.

import * as api from "./api.js";

export const EVENTS = [
  "tasks_subscribed",
  "task_progress",
  "task_status_changed",
  "task_completed",
  "task_failed",
  "task_cancelled",
  "task_deleted",
];
const FIRST_DELAY = 250; // ms
const MAX_DELAY = 3000;

export class TaskStream {
  /** onEvent(name, data); onState("connecting" | "live" | "reconnecting" | "locked") */
  constructor({ onEvent, onState }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.source = null;
    this.timer = null;
    this.failures = 0;
    this.state = null;
    this.opened = 0; // how many times open() ran: a probe gives up if it ran meanwhile
  }

  start() {
    clearTimeout(this.timer);
    this.open();
  }

  stop() {
    clearTimeout(this.timer);
    this.close();
  }

  close() {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  setState(state) {
    if (state !== this.state) {
      this.state = state;
      this.onState(state);
    }
  }

  open() {
    this.opened += 1;
    this.close();
    const source = new EventSource(api.streamUrl());
    this.source = source;
    if (this.state !== "reconnecting") this.setState("connecting");
    for (const name of EVENTS) {
      source.addEventListener(name, (event) => {
        if (this.source !== source) return;
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        if (name === "tasks_subscribed") {
          this.failures = 0;
          this.setState("live");
        }
        this.onEvent(name, data);
      });
    }
    source.addEventListener("error", () => {
      if (this.source !== source) return;
      this.close();
      this.setState("reconnecting");
      this.retry();
    });
  }

  retry() {
    clearTimeout(this.timer);
    const delay = Math.min(FIRST_DELAY * 2 ** this.failures, MAX_DELAY);
    this.failures += 1;
    this.timer = setTimeout(() => this.probe(), delay);
  }

  async probe() {
    const opened = this.opened;
    // The probe may wait on the token prompt, and a new token opens the stream itself
    // (start(), from onTokenChange): then this probe has nothing left to do.
    const stale = () => this.opened !== opened;
    try {
      await api.get("api/settings/limits");
    } catch (err) {
      if (stale()) return;
      if (err.status === 401) {
        this.setState("locked"); // no token given: opened again when one is
        return;
      }
      if (err.status === 0 || err.status >= 500) {
        this.retry();
        return;
      }
    }
    if (!stale()) this.open();
  }
}

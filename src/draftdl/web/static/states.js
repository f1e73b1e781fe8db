// Which control a task's state allows: a mirror of src/draftdl/model/states.py (ALLOWED) and
// of the checks in src/draftdl/tasks/control.py. Buttons are enabled from this; the server
// still decides, and a race it refuses answers 409 with its reason, which the page shows.

export const STATUSES = [
  "pending",
  "downloading",
  "paused",
  "processing",
  "completed",
  "failed",
  "cancelled",
];
export const FILE_STATUSES = ["waiting", "active", "paused", "complete", "error", "removed"];
export const FINAL = new Set(["completed", "failed", "cancelled"]);

const ALLOWED = {
  pending: ["downloading", "processing", "paused", "failed", "cancelled"],
  downloading: ["processing", "paused", "failed", "cancelled"],
  paused: ["pending", "failed", "cancelled"], // resume puts it back in the queue
  processing: ["completed", "failed", "cancelled"],
  completed: ["pending", "processing"], // regenerate
  failed: ["pending", "processing"], // retry or regenerate
  cancelled: ["pending"], // retry
};

export function canMove(src, dst) {
  return (ALLOWED[src] || []).includes(dst);
}

export const allowed = {
  pause: (s) => (s === "pending" || s === "downloading") && canMove(s, "paused"),
  resume: (s) => s === "paused" && canMove(s, "pending"),
  cancel: (s) => canMove(s, "cancelled"),
  retry: (s) => (s === "failed" || s === "cancelled") && canMove(s, "pending"),
  regenerate: (s) => s === "completed" || s === "failed",
  change: (s) => !FINAL.has(s), // priority and the task's speed cap
  delete: () => true, // a running task is stopped first
};

/** What a running task's figures mean: speed and ETA only while it downloads. */
export function running(status) {
  return status === "pending" || status === "downloading";
}

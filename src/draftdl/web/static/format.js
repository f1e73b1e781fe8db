// Figures as people read them; numbers are set in tabular figures with fixed widths (CSS),
// so they do not push the layout around while they change.
import { lang } from "./i18n.js";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
export const DASH = "—";

export function bytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0) return DASH;
  if (n < 1024) return `${n} B`;
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = value < 10 ? 2 : value < 100 ? 1 : 0;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

export function sizes(done, total) {
  return total > 0 ? `${bytes(done)} / ${bytes(total)}` : `${bytes(done)} / ?`;
}

export function speed(n) {
  return typeof n === "number" && n > 0 ? `${bytes(n)}/s` : DASH;
}

/** Seconds as m:ss or h:mm:ss; a dash while unknown. */
export function eta(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return DASH;
  const s = Math.round(seconds);
  const two = (n) => String(n).padStart(2, "0");
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  return hours > 0 ? `${hours}:${two(minutes)}:${two(s % 60)}` : `${minutes}:${two(s % 60)}`;
}

/** Rounded down, so 99.99 (a file still missing) never reads 100.0. */
export function percent(p) {
  const value = typeof p === "number" && Number.isFinite(p) ? p : 0;
  return `${(Math.floor(Math.min(Math.max(value, 0), 100) * 10) / 10).toFixed(1)} %`;
}

/** Local time as 2026-12-01 17:06:05: the same width always, read alike in both languages. */
export function dateTime(iso) {
  if (!iso) return DASH;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return DASH;
  const two = (n) => String(n).padStart(2, "0");
  const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  return `${day} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** "in 5 s", "5 s ago": for a retry that is due. */
export function relative(iso, now = Date.now()) {
  if (!iso) return DASH;
  const at = new Date(iso).getTime();
  if (Number.isNaN(at)) return DASH;
  const seconds = Math.round((at - now) / 1000);
  const format = new Intl.RelativeTimeFormat(lang() === "zh" ? "zh-CN" : "en", {
    numeric: "always",
    style: "short",
  });
  if (Math.abs(seconds) < 90) return format.format(seconds, "second");
  const minutes = Math.round(seconds / 60);
  if (Math.abs(minutes) < 90) return format.format(minutes, "minute");
  return format.format(Math.round(minutes / 60), "hour");
}

/** Figures for people: sizes and speeds in decimal units (1 MB = 1,000,000 bytes), times as
 * `12s`, `3m 05s`, `1h 02m`, `2d 03h`. */

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'] as const;

/** `512 B`, `1.2 MB`, `45.6 MB`, `123 MB`: one decimal below 100, none from 100 on. */
export function formatBytes(bytes: number): string {
  const n = Number.isFinite(bytes) && bytes > 0 ? bytes : 0;
  if (n < 999.5) return `${Math.round(n)} B`;
  for (let i = 1; ; i++) {
    const value = n / 1000 ** i;
    const text = value < 99.95 ? value.toFixed(1) : value.toFixed(0);
    if (Number(text) < 1000 || i === UNITS.length - 1) return `${text} ${UNITS[i]}`;
  }
}

/** `formatBytes` per second: `1.2 MB/s`; anything not a positive number is `0 B/s`. */
export function formatSpeed(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** `0s`, `12s`, `3m 05s`, `1h 02m`, `2d 03h` (seconds rounded up); `''` for null, a negative
 * or a non-finite number: an ETA the server could not tell. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return '';
  }
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  const m = Math.floor(s / 60);
  if (s < 86400) return `${Math.floor(m / 60)}h ${pad(m % 60)}m`;
  const h = Math.floor(s / 3600);
  return `${Math.floor(h / 24)}d ${pad(h % 24)}h`;
}

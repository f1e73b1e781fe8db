// The HTTP client: JSON in and out, the API token (asked once on a 401, kept in
// sessionStorage for the browser session), errors as ApiError with the server's words.
// Paths are relative to the page, so the dashboard also works under a path prefix.

import { t } from "./i18n.js";

const TOKEN_KEY = "draftdl.token";
const MAX_ROUNDS = 20; // token prompts one request may go through

export class ApiError extends Error {
  /** status 0: the server could not be reached. problems: a 413/422's list of fields. */
  constructor(status, message, problems = []) {
    super(message);
    this.status = status;
    this.problems = problems;
  }
}

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

const tokenListeners = new Set();
export function onTokenChange(listener) {
  tokenListeners.add(listener);
}

function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
  for (const listener of tokenListeners) listener(value);
}

let prompt = async () => null; // set by the app: (refused: boolean) => token or null
let asking = null; // the prompt on screen, shared by every request that met a 401

export function setTokenPrompt(fn) {
  prompt = fn;
}

/** Asks for the token once for all requests refused at the same time; false: not given. */
function askToken(refused) {
  if (!asking) {
    asking = (async () => {
      const value = await prompt(refused);
      if (value) setToken(value);
      return Boolean(value);
    })().finally(() => {
      asking = null;
    });
  }
  return asking;
}

export function url(path, query) {
  const u = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") u.searchParams.set(key, value);
  }
  return u;
}

/** The all-tasks event stream: an EventSource cannot send headers, so ?token=. */
export function streamUrl() {
  const value = token();
  return url("api/tasks/stream", value ? { token: value } : {}).href;
}

/** "materials[0].path" from a problem: the server's own path, else built from loc. */
export function problemPath(problem) {
  if (problem && typeof problem.path === "string" && problem.path) return problem.path;
  const loc = Array.isArray(problem?.loc) ? problem.loc : [];
  let out = "";
  for (const [i, part] of loc.entries()) {
    if (i === 0 && (part === "body" || part === "query" || part === "path")) continue;
    if (typeof part === "number") out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(part))) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out || "body";
}

function messageOf(status, detail) {
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail.map((p) => `${problemPath(p)}: ${p?.msg ?? ""}`).join("; ");
  }
  return t("error.status", { status });
}

async function send(method, path, { query, body, raw, accept = [] } = {}) {
  for (let round = 0; round < MAX_ROUNDS; round += 1) {
    const used = token();
    const headers = { Accept: "application/json" };
    if (used) headers.Authorization = `Bearer ${used}`;
    let payload;
    if (raw !== undefined || body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = raw !== undefined ? raw : JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(url(path, query), {
        method,
        headers,
        body: payload,
        cache: "no-store",
        credentials: "same-origin",
      });
    } catch {
      throw new ApiError(0, t("error.network"));
    }
    if (resp.status === 401 && !accept.includes(401)) {
      if (token() !== used) continue; // another request got a new token meanwhile
      if (await askToken(Boolean(used))) continue;
      throw new ApiError(401, t("auth.missing"));
    }
    return resp;
  }
  throw new ApiError(401, t("auth.missing"));
}

async function json(resp) {
  const type = resp.headers.get("content-type") || "";
  if (!type.includes("json")) return null;
  try {
    return await resp.json();
  } catch {
    return null;
  }
}

/** JSON in, JSON out; an answer not in 2xx (nor in ``accept``) throws ApiError. */
export async function request(method, path, options = {}) {
  const resp = await send(method, path, options);
  const data = await json(resp);
  if (!resp.ok && !(options.accept || []).includes(resp.status)) {
    const detail = data?.detail;
    throw new ApiError(resp.status, messageOf(resp.status, detail), Array.isArray(detail) ? detail : []);
  }
  return data;
}

export const get = (path, query, options = {}) => request("GET", path, { ...options, query });
export const post = (path, body, options = {}) => request("POST", path, { ...options, body });
export const patch = (path, body) => request("PATCH", path, { body });
export const put = (path, body) => request("PUT", path, { body });
export const del = (path, query) => request("DELETE", path, { query });

/** A file answer as a Blob with its name (Content-Disposition), for a download with the
 * Authorization header, which a plain link cannot send. */
export async function download(path, query) {
  const resp = await send("GET", path, { query });
  if (!resp.ok) {
    const data = await json(resp);
    throw new ApiError(resp.status, messageOf(resp.status, data?.detail));
  }
  const blob = await resp.blob();
  return { blob, filename: filenameOf(resp.headers.get("content-disposition")) };
}

function filenameOf(disposition) {
  if (!disposition) return "draft.zip";
  const star = /filename\*\s*=\s*([^']*)''([^;]+)/i.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[2].trim());
    } catch {
      /* fall through to the plain name */
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1] : "draft.zip";
}

// The API, called with the key the user pasted. The key lives in sessionStorage only (gone with the tab), goes
// in the Authorization header only, and never into a URL, the page's address or a log line.

const KEY = "vidrelay.apiKey";
// Relative to the page, so a deployment under a base path works unchanged.
const BASE = new URL("v1/", document.baseURI);

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `The API answered ${status}.`);
    this.status = status;
    this.param = error.param || null;
    this.code = error.code || null;
    this.type = error.type || null;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function saveKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

let onUnauthorized = () => {};

export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export function url(path, query) {
  const target = new URL(path.replace(/^\//, ""), BASE);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(name, value);
  }
  return target;
}

// `body`: a plain object (sent as JSON) or FormData (multipart, the browser sets the boundary).
export async function api(method, path, { query, body, headers, key } = {}) {
  const sent = { Accept: "application/json", ...(headers || {}) };
  const token = key || apiKey();
  if (token) sent.Authorization = `Bearer ${token}`;
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    sent["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(url(path, query), {
    method,
    headers: sent,
    body: payload,
    credentials: "omit",
    cache: "no-store",
    referrerPolicy: "no-referrer",
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, parsed);
    // A key checked at login has its own message there; a key that stops working later ends the session.
    if (response.status === 401 && !key) onUnauthorized(error);
    throw error;
  }
  return parsed;
}

export const IN_FLIGHT = new Set(["queued", "in_progress"]);

// The one way the client talks to the host's REST API.

const TOKEN_KEY = 'sb.token';

export const token = {
  // sessionStorage, not localStorage: closing the tab ends the desk session, which is
  // what shared contact-center workstations expect.
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

let onUnauthorized = () => {};
/** What to do when the host says the session is gone (the shell shows the login). */
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export class ApiError extends Error {
  /** `details` is the whole error object, for fields beside code and message (`closed_at`). */
  constructor(status, code, message, details = {}) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** `api('GET', '/conversations/1')`; paths are relative to /api/v1. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const t = token.get();
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached');
  }
  const data = await readJson(res);
  if (!res.ok) throw failure(res, data, path);
  return data;
}

async function readJson(res) {
  const text = await res.text().catch(() => '');
  if (!text) return null;
  try { return JSON.parse(text); } catch { return null; }
}

function failure(res, data, path) {
  const err = data?.error ?? {};
  const error = new ApiError(res.status, err.code ?? `http_${res.status}`, err.message ?? res.statusText, err);
  // Login itself answers 401 for a wrong password; that is not a lost session.
  if (res.status === 401 && path !== '/auth/login') onUnauthorized(error);
  return error;
}

/**
 * Fetches an authenticated file of the host (a call recording, a timeline file) as a
 * Blob. `url` is an address the API handed out (`/api/v1/calls/1/recording`,
 * `/api/v1/attachments/…`); the token is only ever sent to this origin.
 */
export async function blob(url) {
  let target;
  try { target = new URL(url, location.href); } catch { target = null; }
  if (!target || target.origin !== location.origin) throw new ApiError(0, 'foreign_url', 'Not an address of this server');
  const headers = {};
  const t = token.get();
  if (t) headers.authorization = `Bearer ${t}`;
  let res;
  try {
    res = await fetch(target.href, { headers });
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached');
  }
  if (!res.ok) throw failure(res, await readJson(res), target.pathname);
  return res.blob();
}

/**
 * Uploads a file as the raw request body (`POST /attachments?filename=…`), labelled
 * with its own type; returns the parsed answer.
 */
export async function upload(path, file) {
  const headers = { accept: 'application/json', 'content-type': file.type || 'application/octet-stream' };
  const t = token.get();
  if (t) headers.authorization = `Bearer ${t}`;
  let res;
  try {
    res = await fetch(`/api/v1${path}`, { method: 'POST', headers, body: file });
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached');
  }
  const data = await readJson(res);
  if (!res.ok) throw failure(res, data, path);
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const put = (path, body) => api('PUT', path, body);
export const patch = (path, body) => api('PATCH', path, body);

/** Path segment escaping for ids that come from the server. */
export const seg = (id) => encodeURIComponent(id);

/**
 * The pages' client of the JSON API (the same API notebooks use).
 *
 * Every failure becomes an `ApiError` carrying the API's error shape,
 * `{detail, errors: [{field, message}]}`, so a form can put each message next
 * to the field it names.
 */

const BASE = document.documentElement.dataset.base || "";

/** A path of this site, under the prefix the server is mounted at. */
export function url(path) {
  return BASE + path;
}

/** The page comparing these runs, in this order. */
export function compareUrl(ids) {
  return url(`/compare?ids=${ids.join(",")}`);
}

/** The run ids of an address's `ids=3,1,2` parameter: positive integers, each once, in their order. */
export function idsParam(search = location.search) {
  const ids = (new URLSearchParams(search).get("ids") || "").split(",").map((part) => Number(part.trim()));
  return [...new Set(ids.filter((id) => Number.isInteger(id) && id > 0))];
}

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status; 0 when the server could not be reached.
   * @param {string} detail The API's sentence about what went wrong.
   * @param {{field: string, message: string}[]} errors One entry per invalid field.
   */
  constructor(status, detail, errors = []) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.errors = errors;
  }
}

/** Send the browser to the login page, coming back here afterwards. */
export function signIn() {
  const next = location.pathname + location.search;
  location.assign(url(`/login?next=${encodeURIComponent(next)}`));
}

/**
 * Call `/api/v1{path}`.
 * @param {string} method
 * @param {string} path
 * @param {{body?: unknown, query?: Record<string, unknown>, signal?: AbortSignal, redirect401?: boolean}} [options]
 *   `query` values that are arrays repeat the parameter; null, undefined and "" are left out.
 * @returns {Promise<any>} The parsed JSON body (null for 204).
 */
export async function request(method, path, { body, query, signal, redirect401 = true } = {}) {
  const target = new URL(url(`/api/v1${path}`), location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== null && item !== undefined && item !== "") target.searchParams.append(key, String(item));
    }
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(target, {
      method, headers, signal, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "the server cannot be reached; check that it is running, then try again");
  }
  if (response.status === 401 && redirect401) signIn();
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = typeof data?.detail === "string" ? data.detail : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, detail, Array.isArray(data?.errors) ? data.errors : []);
  }
  return data;
}

export const get = (path, query, options) => request("GET", path, { ...options, query });
export const post = (path, body, options) => request("POST", path, { ...options, body });
export const remove = (path, options) => request("DELETE", path, options);

let catalogPromise = null;

/** The catalogue (datasets, methods, fusions, config schema, limits), fetched once per page. */
export function catalog() {
  catalogPromise ??= get("/catalog");
  return catalogPromise;
}

/**
 * Every item of a cursor-paginated listing (`{items, next_cursor}`), up to `max` items.
 * @returns {Promise<{items: any[], complete: boolean}>}
 */
export async function listAll(path, query = {}, max = 2000) {
  const items = [];
  let cursor = null;
  do {
    const page = await get(path, { ...query, cursor, limit: 500 });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return { items, complete: !cursor };
}

/** Every event of a run after `afterId`, oldest first. */
export async function runEvents(runId, afterId = null) {
  const events = [];
  let after = afterId;
  for (;;) {
    const page = await get(`/runs/${runId}/events`, { after_id: after, limit: 1000 });
    events.push(...page.items);
    if (page.next_after_id === null) return events;
    after = page.next_after_id;
  }
}

// The recognition v2 API over fetch: the token header, JSON in and out, `{"detail": ...}` errors
// turned into ApiError, paginated lists, and uploads with progress (XMLHttpRequest, because
// fetch cannot report upload progress).

import { clientEndpointFrom } from "./config.js";
import { currentToken } from "./lib/session.js";
import { currentWorkspace } from "./lib/workspace.js";

let apiBase = "";
let apiSource = "";

/** Set once at start-up from config.js: "https://host/.../recognition/v2/" and where it came from. */
export function configureApi(base, source = "") {
  apiBase = base;
  apiSource = source;
}

export function getApiBase() {
  return apiBase;
}

/** "config.json" or "page origin": how the API's address was found (the token screen says it). */
export function getApiSource() {
  return apiSource;
}

/** A failed API call: `status` (0 when the API could not be reached) and the API's `detail`. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
  }
}

/**
 * A full URL from a path relative to the API base ("task/") or a full URL (a `next` link).
 * Recognition calls carry the chosen workspace; other URLs (signed upload URLs) never do.
 */
export function apiUrl(pathOrUrl, params = {}) {
  const url = /^https?:\/\//.test(pathOrUrl) ? new URL(pathOrUrl) : new URL(pathOrUrl, apiBase);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  const workspace = currentWorkspace();
  if (workspace && url.href.startsWith(apiBase) && !url.searchParams.has("workspace")) {
    url.searchParams.set("workspace", workspace);
  }
  return url.href;
}

/** A URL of the account routes ("workspace/" -> ".../account/v2/workspace/"). */
export function accountUrl(path) {
  return new URL(`account/v2/${path}`, clientEndpointFrom(apiBase)).href;
}

/** The readable reason of a failed answer: the API's `detail`, API Gateway's `message`, or the status. */
function detailOf(payload, status, statusText) {
  if (payload && typeof payload === "object") {
    const detail = payload.detail ?? payload.message;
    if (typeof detail === "string" && detail) return detail;
    if (detail) return JSON.stringify(detail);
  }
  if (typeof payload === "string" && payload.trim() && payload.length < 300) return payload.trim();
  return `HTTP ${status} ${statusText || ""}`.trim();
}

function parseBody(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function unreachable(error) {
  return new ApiError(
    0,
    `Could not reach the API at ${apiBase} (${error.message || error}). Is the server running, and is the address right?`,
  );
}

/** One API call; resolves to the parsed JSON (null for an empty answer) or throws ApiError. */
export async function request(method, pathOrUrl, { body, params, token = currentToken() } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Token ${token}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(apiUrl(pathOrUrl, params), init);
  } catch (error) {
    throw unreachable(error);
  }
  const payload = parseBody(await response.text());
  if (!response.ok) throw new ApiError(response.status, detailOf(payload, response.status, response.statusText));
  return payload;
}

export const get = (path, params, options) => request("GET", path, { params, ...options });
export const post = (path, body = {}) => request("POST", path, { body });
export const patch = (path, body) => request("PATCH", path, { body });
export const put = (path, body) => request("PUT", path, { body });
export const del = (path) => request("DELETE", path);

/** Every item of a paginated list, following `next` (for short lists: labels, models). */
export async function listAll(path, params = {}) {
  const items = [];
  let page = await get(path, { page_size: 1000, ...params });
  items.push(...page.results);
  while (page.next) {
    page = await get(page.next);
    items.push(...page.results);
  }
  return items;
}

// --- uploads with progress -----------------------------------------------------------------

/** Send `body` with XMLHttpRequest, reporting upload progress (0..1); resolves to parsed JSON. */
function send(method, url, body, { onProgress, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("Accept", "application/json");
    if (onProgress) {
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
    }
    xhr.addEventListener("load", () => {
      const payload = parseBody(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) resolve(payload);
      else reject(new ApiError(xhr.status, detailOf(payload, xhr.status, xhr.statusText)));
    });
    xhr.addEventListener("error", () => reject(unreachable(new Error("network error"))));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "The upload was cancelled")));
    xhr.send(body);
  });
}

function authHeaders() {
  return { Authorization: `Token ${currentToken()}` };
}

// On AWS a synchronous request carries at most 6 MB, and API Gateway hands a multipart body to
// Lambda in base64 (4/3 larger): bigger files go through an upload URL instead.
const DIRECT_UPLOAD_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Upload one file as a training image with these labels (multipart, as `curl -F img_path=@...`).
 * A large file (or one the API refuses with 413) goes the three-step way: ask for an upload
 * URL, PUT the bytes there, then register the upload.
 */
export async function uploadImage(file, labelIds, onProgress = () => {}) {
  if (file.size <= DIRECT_UPLOAD_MAX_BYTES) {
    const form = new FormData();
    form.append("img_path", file, file.name);
    form.append("labels", JSON.stringify(labelIds));
    try {
      return await send("POST", apiUrl("training-image/"), form, { onProgress, headers: authHeaders() });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 413) throw error;
    }
  }
  const grant = await post("training-image/upload-url/", { size: file.size });
  await send(grant.method || "PUT", grant.url, file, {
    onProgress,
    headers: { "Content-Type": file.type || "application/octet-stream" },
  });
  return post("training-image/", { upload_id: grant.upload_id, labels: labelIds });
}

/** The id of the existing image named in a duplicate's 409 detail ("Training image ID: <id> already exists"). */
export function duplicateImageId(detail) {
  const match = /Training image ID:\s*([0-9a-f-]{8,})/i.exec(detail || "");
  return match ? match[1] : null;
}

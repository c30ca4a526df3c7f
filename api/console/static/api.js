// Every call the console makes: the /v1 REST API with the session's bearer token. Errors come
// back as ApiError with the envelope's code and message, shown to the user as they are.

import { signOut, token } from "./session.js";

const BASE = new URL("../../v1", import.meta.url).pathname; // under the API's root path

export class ApiError extends Error {
  constructor(status, code, message, description, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.description = description || null;
    this.requestId = requestId || null;
  }
}

/** The envelope's `data`; throws ApiError on any failure (a 401 also signs the user out). */
export async function api(method, path, { body, query, headers = {}, bearer } = {}) {
  const url = BASE + path + queryString(query);
  const sent = {
    method,
    headers: { Accept: "application/json", Authorization: `Bearer ${bearer || token()}`, ...headers },
    credentials: "omit",
    cache: "no-store",
    referrerPolicy: "no-referrer",
  };
  if (body !== undefined) {
    sent.headers["Content-Type"] = "application/json";
    sent.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, sent);
  } catch {
    throw new ApiError(0, "NETWORK", "the service cannot be reached; check your connection");
  }
  const envelope = await response.json().catch(() => null);
  if (response.ok && envelope && "data" in envelope) return envelope.data;
  throw failure(response, envelope, bearer);
}

function failure(response, envelope, bearer) {
  const error = (envelope && envelope.error) || {};
  const requestId = envelope && envelope.meta ? envelope.meta.request_id : null;
  if (response.status === 401 && !bearer) {
    signOut();
    window.dispatchEvent(new Event("console:signed-out"));
  }
  return new ApiError(
    response.status,
    error.code || `HTTP_${response.status}`,
    error.message || `the service answered ${response.status}`,
    error.description,
    requestId,
  );
}

function queryString(query) {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== null && one !== undefined && one !== "") params.append(name, String(one));
    }
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** Every page of a paged list endpoint (`limit`/`offset`), concatenated. */
export async function allPages(path, query = {}, pageSize = 10000) {
  const found = [];
  for (let offset = 0; ; offset += pageSize) {
    const page = await api("GET", path, { query: { ...query, limit: pageSize, offset } });
    found.push(...page);
    if (page.length < pageSize) return found;
  }
}

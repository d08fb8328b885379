// Where the API is. On AWS the console is served by CloudFront and the API by API Gateway, on
// another origin: the deployment writes /config.json ({"apiUrl": "https://.../recognition/v2/"}).
// The local gateway serves both from one origin and has no config.json: the page's own origin.

const API_BASE_PATH = "recognition/v2/";

/** Normalise an API URL to the recognition base, ending with "/recognition/v2/". */
export function apiBaseFrom(url) {
  let base = String(url).trim();
  if (!base.endsWith("/")) base += "/";
  if (!base.endsWith(API_BASE_PATH)) base += API_BASE_PATH;
  return base;
}

/** The root the ximilar client wants as its `endpoint` (the URL without "recognition/v2/"). */
export function clientEndpointFrom(apiBase) {
  return apiBase.slice(0, apiBase.length - API_BASE_PATH.length);
}

/**
 * Read /config.json; fall back to the page's origin when it is missing or unreadable.
 * Returns {apiBase, source} where source says which one was used (shown on the token screen).
 */
export async function loadConfig() {
  const fallback = { apiBase: apiBaseFrom(window.location.origin), source: "the page's origin" };
  try {
    const response = await fetch(new URL("config.json", document.baseURI), { cache: "no-cache" });
    if (!response.ok) return fallback;
    const config = await response.json();
    if (config && typeof config.apiUrl === "string" && config.apiUrl) {
      return { apiBase: apiBaseFrom(new URL(config.apiUrl, window.location.href).href), source: "config.json" };
    }
  } catch {
    // No config.json (or not JSON): the API is on this origin.
  }
  return fallback;
}

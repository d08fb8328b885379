// The API token: asked once, kept in this browser's localStorage until "Sign out".

const KEY = "kestrel.token";
let memory = ""; // the token of this page's life, for when localStorage refuses to store

export function getToken() {
  try {
    return window.localStorage.getItem(KEY) || "";
  } catch {
    return ""; // storage disabled (private mode with strict settings): ask every time
  }
}

export function setToken(token) {
  try {
    window.localStorage.setItem(KEY, token);
  } catch {
    // Not persisted; the session still works until the page is closed.
  }
  memory = token;
}

export function clearToken() {
  memory = "";
  try {
    window.localStorage.removeItem(KEY);
  } catch {
    // nothing stored
  }
}

/** The token in use: the stored one, else the one given in this page's life. */
export function currentToken() {
  return getToken() || memory;
}

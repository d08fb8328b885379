// Hash routing: "#/tasks/<task_id>/models" picks a view and hands it the path's parameters.
// Links in the training emails point at "<console>/#/tasks/<task_id>/models".
//
// Each view is `async render(container, params, scope)`. `scope.signal` is aborted when the
// user navigates away, so a view stops its polling and ignores late answers.

import { errorBox } from "./lib/ui.js";

const routes = [];
let current = null; // { controller } of the view on screen
let guard = null;

/** Register a view for a pattern such as "/tasks/:taskId/models/:modelId". */
export function route(pattern, render) {
  const names = [];
  const source = pattern.replace(/:(\w+)/g, (_, name) => {
    names.push(name);
    return "([^/]+)";
  });
  routes.push({ regex: new RegExp(`^${source}/?$`), names, render });
}

/** `check(path)` may return another view to show instead (the sign-in screen without a token). */
export function setGuard(check) {
  guard = check;
}

function match(path) {
  for (const entry of routes) {
    const found = entry.regex.exec(path);
    if (found) {
      const params = Object.fromEntries(entry.names.map((name, i) => [name, decodeURIComponent(found[i + 1])]));
      return { render: entry.render, params };
    }
  }
  return null;
}

/** The path after "#", e.g. "/tasks/abc"; "/tasks" when there is none. */
export function currentPath() {
  const path = window.location.hash.replace(/^#/, "");
  return path && path !== "/" ? path : "/tasks";
}

/** Go to a path ("/tasks/abc"); same path: render again. */
export function navigate(path) {
  if (currentPath() === path) show();
  else window.location.hash = `#${path}`;
}

/** Render the view for the current hash into `outlet`. */
export async function show(outlet = document.getElementById("view")) {
  current?.controller.abort();
  const controller = new AbortController();
  current = { controller };
  const path = currentPath();
  const found = (guard && guard(path)) || match(path) || match("/not-found");
  outlet.replaceChildren();
  outlet.setAttribute("aria-busy", "true");
  try {
    await found.render(outlet, found.params || {}, { signal: controller.signal, path });
  } catch (error) {
    if (!controller.signal.aborted) outlet.append(errorBox(error, "show this page"));
  } finally {
    if (!controller.signal.aborted) {
      outlet.removeAttribute("aria-busy");
      // Move focus to the new screen's heading, as a page load would for screen readers.
      // (unless the view focused a field of its own, like the sign-in screen).
      const heading = outlet.querySelector("h1");
      if (heading) {
        heading.setAttribute("tabindex", "-1");
        if (!outlet.contains(document.activeElement) || document.activeElement === outlet) {
          heading.focus({ preventScroll: true });
        }
        document.title = `${heading.textContent} · Kestrel`;
      }
      window.scrollTo(0, 0);
      window.dispatchEvent(new CustomEvent("kestrel:route", { detail: { path } }));
    }
  }
}

/** Listen to hash changes and show the first view. */
export function startRouter() {
  window.addEventListener("hashchange", () => show());
  return show();
}

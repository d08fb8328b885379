// Building DOM nodes without innerHTML: every piece of text the API returns is set as text,
// so a label called "<img onerror=...>" stays a label.

/**
 * Create an element: h("button", { class: "primary", onclick: fn }, "Save").
 * Attributes: `class`, `text`, `on<event>` handlers, `dataset` (object), `style` (object of
 * CSS properties, set through the CSSOM so the page's CSP allows it), booleans (true sets the
 * attribute, false/null/undefined leaves it out), anything else as an attribute.
 * Children: nodes, strings, numbers, arrays of those; null/false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "style") {
      for (const [property, css] of Object.entries(value)) element.style.setProperty(property, css);
    } else if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

/** Append children (nodes, strings, nested arrays) to `parent`, skipping null/false. */
export function append(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace everything inside `parent` with `children`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** A unique id for label/input pairs and aria references. */
let counter = 0;
export function uid(prefix = "k") {
  counter += 1;
  return `${prefix}-${counter}`;
}

// --- formatting ---------------------------------------------------------------------------

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** "24 Nov 2026, 11:07" from an ISO date, or "—" without one. */
export function formatDate(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat.format(date);
}

/** "1 min 23 s" between two ISO dates, or "—" if either is missing. */
export function formatDuration(fromIso, toIso) {
  if (!fromIso || !toIso) return "—";
  const seconds = Math.max(0, Math.round((new Date(toIso) - new Date(fromIso)) / 1000));
  if (Number.isNaN(seconds)) return "—";
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** "93.5%" from 0.935; "—" for null. */
export function formatPercent(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  return `${(Number(value) * 100).toFixed(digits)}%`;
}

/** "1.2 MB" from a byte count. */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** "1 image" / "3 images". */
export function plural(count, singular, pluralForm = `${singular}s`) {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

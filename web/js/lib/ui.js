// Shared pieces of the interface: error notices, toasts, dialogs, meters, copy buttons.

import { h, replace } from "./dom.js";

// --- tables ------------------------------------------------------------------------------

/**
 * A scrollable table: `columns` are heading contents (text or nodes), or `{ label, ...attrs }`
 * for a heading with attributes; null columns are left out. `rows` are <tr> nodes.
 */
export function dataTable(columns, rows, tableClass = "data") {
  const headings = columns
    .filter((column) => column !== null && column !== undefined && column !== false)
    .map((column) => {
      const plain = typeof column === "string" || column instanceof Node || Array.isArray(column);
      const { label, ...attrs } = plain ? { label: column } : column;
      return h("th", { scope: "col", ...attrs }, label);
    });
  return h(
    "div",
    { class: "table-wrap" },
    h("table", { class: tableClass }, h("thead", {}, h("tr", {}, headings)), h("tbody", {}, rows)),
  );
}

// --- messages ------------------------------------------------------------------------------

/**
 * A readable notice for a failed call: what we tried, the API's own `detail`, and its status.
 * A refused token (401) gets a way back to the sign-in screen.
 */
export function errorBox(error, doing = "") {
  const status = error && typeof error.status === "number" ? error.status : null;
  const detail = (error && (error.detail || error.message)) || String(error);
  return h(
    "div",
    { class: "notice error", role: "alert" },
    h("strong", {}, doing ? `Could not ${doing}.` : "Something went wrong."),
    " ",
    h("span", { class: "detail" }, detail),
    status ? h("span", { class: "status" }, status === 0 ? " (no answer)" : ` (HTTP ${status})`) : null,
    status === 401
      ? h("p", {}, h("a", { href: "#/signin", "data-action": "sign-in-again" }, "Sign in with another token"))
      : null,
  );
}

/** Put an error notice into `slot` (replacing what was there). */
export function showError(slot, error, doing) {
  replace(slot, errorBox(error, doing));
  slot.scrollIntoView?.({ block: "nearest" });
}

/** A passing message at the bottom of the screen, also read out by screen readers. */
export function toast(message, kind = "info") {
  const item = h("div", { class: `toast ${kind}` }, message);
  document.getElementById("toasts")?.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 9000 : 4500);
}

/** Say something to screen readers without showing it. */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (region) region.textContent = message;
}

/** A friendly empty state: what is missing and what to do about it. */
export function emptyState(title, text, ...actions) {
  return h("div", { class: "empty" }, h("p", { class: "empty-title" }, title), text ? h("p", {}, text) : null, actions);
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

// --- controls ------------------------------------------------------------------------------

/** Disable `button` while `work()` runs; returns its result. */
export async function busy(button, work) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = label;
  }
}

/** A horizontal meter (0..1) with an accessible name and the value as text. */
export function meter(fraction, label, { kind = "", text = "" } = {}) {
  const value = Math.max(0, Math.min(1, Number(fraction) || 0));
  return h(
    "div",
    { class: `meter ${kind}` },
    h(
      "div",
      {
        class: "meter-track",
        role: "progressbar",
        "aria-label": label,
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-valuenow": Math.round(value * 100),
        "aria-valuetext": text || `${Math.round(value * 100)}%`,
      },
      h("span", { class: "meter-fill", style: { width: `${value * 100}%` } }),
    ),
    text ? h("span", { class: "meter-text" }, text) : null,
  );
}

/** A button that copies `getText()` to the clipboard (with a fallback for plain-http origins). */
export function copyButton(getText, label = "Copy") {
  const button = h("button", { type: "button", class: "small" }, label);
  button.addEventListener("click", async () => {
    const text = getText();
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // navigator.clipboard needs a secure context; the old way works everywhere else.
      const area = h("textarea", { class: "visually-hidden", "aria-hidden": "true" });
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}

// --- dialogs -------------------------------------------------------------------------------

/**
 * A modal <dialog>: focus moves into it, Escape or "Cancel" closes it (resolving to null),
 * the submit button resolves to `onSubmit()`'s value. `onSubmit` may throw to keep it open.
 */
export function openDialog({ title, body = [], submitText = "OK", danger = false, onSubmit = () => true }) {
  return new Promise((resolve) => {
    const problem = h("div", { class: "dialog-problem" });
    const submit = h("button", { type: "submit", class: danger ? "danger" : "primary" }, submitText);
    const cancel = h("button", { type: "button" }, "Cancel");
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", {}, title),
      body,
      problem,
      h("div", { class: "dialog-actions" }, cancel, submit),
    );
    const dialog = h("dialog", { "aria-label": title }, form);
    let result = null;
    cancel.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        result = await busy(submit, () => onSubmit());
        dialog.close();
      } catch (error) {
        replace(problem, errorBox(error));
      }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal(); // Escape fires "cancel" then "close": resolves to null
  });
}

/** Ask yes/no; resolves to true only when confirmed. */
export async function confirmDialog(title, message, { confirmText = "Delete", danger = true } = {}) {
  return (await openDialog({ title, body: [h("p", {}, message)], submitText: confirmText, danger })) === true;
}

// A paginated API list on screen: one page at a time, "Previous"/"Next" follow the API's own
// `previous`/`next` links (full URLs carrying an opaque cursor), "Page 2 of 5" from `count`.

import { get } from "../api.js";
import { h, replace } from "./dom.js";
import { errorBox, loading } from "./ui.js";

/**
 * @param {object} options
 * @param {string} options.path      list path relative to the API base ("task/")
 * @param {object} options.params    filters and page_size
 * @param {Function} options.renderItems  (results, page) => Node
 * @param {Function} options.renderEmpty  () => Node, shown when the list has no items
 * @param {string} options.label     accessible name of the page navigation
 * @param {string} options.doing     what a failure was trying to do ("load the tasks")
 * @returns {{element: HTMLElement, reload: Function, page: Function}}
 */
export function pagedList({ path, params, renderItems, renderEmpty, label, doing }) {
  const body = h("div", { class: "paged-body" });
  const nav = h("nav", { class: "pager", "aria-label": label });
  const element = h("div", { class: "paged" }, body, nav);
  const pageSize = Number(params.page_size) || 50;
  let state = { url: null, number: 1, page: null };

  async function load(url, number) {
    replace(body, loading());
    try {
      const page = url ? await get(url) : await get(path, params);
      state = { url, number, page };
      draw();
    } catch (error) {
      replace(body, errorBox(error, doing));
      replace(nav);
    }
  }

  function draw() {
    const { page, number } = state;
    replace(body, page.results.length ? renderItems(page.results, page) : renderEmpty());
    const pages = Math.max(1, Math.ceil(page.count / pageSize));
    if (pages <= 1) {
      replace(nav);
      return;
    }
    const previous = h("button", { type: "button", disabled: !page.previous }, "← Previous");
    const next = h("button", { type: "button", disabled: !page.next }, "Next →");
    previous.addEventListener("click", () => load(page.previous, number - 1));
    next.addEventListener("click", () => load(page.next, number + 1));
    replace(nav, previous, h("span", { class: "pager-status" }, `Page ${number} of ${pages} · ${page.count} in all`), next);
  }

  load(null, 1);
  return {
    element,
    /** Load the page on screen again (after a change), or the first one. */
    reload: (fromStart = false) => (fromStart ? load(null, 1) : load(state.url, state.number)),
    page: () => state.page,
  };
}

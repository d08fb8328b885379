// The upload queue of a task: a few files at a time, each with its own progress and outcome.
// It lives outside the screens, so uploads go on (and their progress is shown again) when the
// user moves to another tab and comes back.

import { ApiError, duplicateImageId, uploadImage } from "../api.js";

const CONCURRENCY = 4;
const queues = new Map(); // task id -> UploadQueue

/** The queue of one task (created on first use). */
export function queueFor(taskId) {
  if (!queues.has(taskId)) queues.set(taskId, new UploadQueue());
  return queues.get(taskId);
}

/** True while any task is still uploading (the page warns before it is closed). */
export function anyUploading() {
  return [...queues.values()].some((queue) => queue.busy());
}

let nextId = 0;

/**
 * Items go queued -> uploading -> done | duplicate | failed.
 * Listeners get ("item", item) on each change and ("list") when items are added or cleared.
 */
export class UploadQueue {
  constructor() {
    this.items = [];
    this.running = 0;
    this.listeners = new Set();
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(kind, item) {
    for (const listener of this.listeners) listener(kind, item);
  }

  /** Queue files: [{file, path, labelIds, labelName}], or an already failed one with `error`. */
  add(entries) {
    for (const entry of entries) {
      nextId += 1;
      this.items.push({
        id: nextId,
        state: entry.error ? "failed" : "queued",
        progress: 0,
        message: entry.error || "",
        ...entry,
      });
    }
    this.emit("list");
    this.pump();
  }

  busy() {
    return this.items.some((item) => item.state === "queued" || item.state === "uploading");
  }

  counts() {
    const counts = { queued: 0, uploading: 0, done: 0, duplicate: 0, failed: 0 };
    for (const item of this.items) counts[item.state] += 1;
    return counts;
  }

  /** Forget the finished items (the failed ones too). */
  clearFinished() {
    this.items = this.items.filter((item) => item.state === "queued" || item.state === "uploading");
    this.emit("list");
  }

  pump() {
    while (this.running < CONCURRENCY) {
      const item = this.items.find((candidate) => candidate.state === "queued");
      if (!item) break;
      this.running += 1;
      this.upload(item).finally(() => {
        this.running -= 1;
        this.pump();
        if (!this.busy()) this.emit("idle");
      });
    }
  }

  async upload(item) {
    item.state = "uploading";
    this.emit("item", item);
    try {
      const image = await uploadImage(item.file, item.labelIds, (fraction) => {
        item.progress = fraction;
        this.emit("item", item);
      });
      item.state = "done";
      item.progress = 1;
      item.imageId = image.id;
      item.message = "uploaded";
    } catch (error) {
      const existing = error instanceof ApiError && error.status === 409 ? duplicateImageId(error.detail) : null;
      item.state = existing ? "duplicate" : "failed";
      item.imageId = existing;
      // The API's detail says why (not an image, too large, ...) or names the existing image.
      item.message = error.detail || error.message;
    }
    this.emit("item", item);
  }
}

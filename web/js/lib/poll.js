// Polling without reloading: call `step()` every `intervalMs` until it answers false or the
// screen goes away (its AbortSignal). A failed step is reported and retried, not fatal.

import { STATUS } from "./models.js";

/**
 * @param {Function} step        async () => boolean: true to go on
 * @param {number} intervalMs    pause between the end of one step and the next
 * @param {AbortSignal} signal   stops the loop
 * @param {Function} onError     (error) => void, called for a failed step
 */
export function poll(step, intervalMs, signal, onError = () => {}) {
  let timer = null;
  async function run() {
    if (signal.aborted) return;
    let goOn = true;
    try {
      goOn = await step();
    } catch (error) {
      onError(error);
    }
    if (goOn && !signal.aborted) timer = setTimeout(run, intervalMs);
  }
  signal.addEventListener("abort", () => clearTimeout(timer));
  timer = setTimeout(run, intervalMs);
}

/** True while a model version is still on its way (not TRAINED or FAILED yet). */
export function isRunning(model) {
  return model && (model.train_status === STATUS.WAITING || model.train_status === STATUS.TRAINING);
}

// Live updates by polling: quickly while something changes, backing off while nothing does,
// paused while the tab is hidden, stopped when the watched thing is final.

/**
 * poll(step, {fastest, slowest}) calls `await step()` now and again and again; step returns
 * "changed" (poll again soon), "same" (wait twice as long, up to `slowest`) or "done" (stop).
 * A step that throws counts as "same", so an unreachable service is asked less and less often.
 * Returns {stop, now}: now() polls at once and goes back to the fastest pace (after an action).
 */
export function poll(step, { fastest = 1000, slowest = 15000 } = {}) {
  let delay = fastest;
  let timer = null;
  let stopped = false;
  let busy = false; // a step is in flight: now() then asks for one more right after it
  let again = false;

  async function tick() {
    timer = null;
    if (stopped) return;
    if (busy) {
      again = true;
      return;
    }
    if (document.hidden) {
      document.addEventListener("visibilitychange", tick, { once: true });
      return;
    }
    let outcome;
    busy = true;
    try {
      outcome = await step();
    } catch {
      outcome = "same";
    } finally {
      busy = false;
    }
    if (stopped) return;
    if (again) {
      again = false;
      delay = fastest;
      tick();
      return;
    }
    if (outcome === "done") return;
    delay = outcome === "changed" ? fastest : Math.min(slowest, delay * 2);
    timer = setTimeout(tick, delay);
  }

  function cancelTimer() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  timer = setTimeout(tick, fastest);
  return {
    stop() {
      stopped = true;
      cancelTimer();
      document.removeEventListener("visibilitychange", tick);
    },
    now() {
      if (stopped) return;
      cancelTimer();
      delay = fastest;
      tick();
    },
  };
}

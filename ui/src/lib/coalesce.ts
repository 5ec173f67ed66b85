// Coalescing a fast stream of values (sync status events) into at most one update per painted frame.

/**
 * Calls `apply` with the latest of the values handed to the returned function, at most once per animation
 * frame (or after `maxWaitMs` when no frame comes, e.g. in a hidden window): a sync reports progress far
 * more often than a screen can show it.
 */
export function coalescePerFrame<T>(apply: (value: T) => void, maxWaitMs = 250): { push(value: T): void; cancel(): void } {
  let latest: { value: T } | null = null;
  let frame: number | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const flush = () => {
    if (frame !== null) cancelAnimationFrame(frame);
    if (timer !== null) clearTimeout(timer);
    frame = null;
    timer = null;
    const v = latest;
    latest = null;
    if (v) apply(v.value);
  };
  return {
    push(value: T) {
      latest = { value };
      if (frame === null && timer === null) {
        frame = typeof requestAnimationFrame === 'function' ? requestAnimationFrame(flush) : null;
        timer = setTimeout(flush, maxWaitMs);
      }
    },
    cancel() {
      if (frame !== null) cancelAnimationFrame(frame);
      if (timer !== null) clearTimeout(timer);
      frame = null;
      timer = null;
      latest = null;
    },
  };
}

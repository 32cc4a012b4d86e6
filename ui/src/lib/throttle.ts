//! Coalesces bursts of calls: `debounce` waits for quiet, `coalesce` runs at most once per
//! interval (the last call wins), for reloading a view when many events arrive at once.

export function debounce<A extends unknown[]>(f: (...args: A) => void, ms: number): ((...args: A) => void) & { cancel(): void } {
  let t: ReturnType<typeof setTimeout> | undefined;
  const wrapped = (...args: A) => {
    clearTimeout(t);
    t = setTimeout(() => f(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(t);
  return wrapped;
}

export function coalesce(f: () => void, ms: number): (() => void) & { cancel(): void } {
  let t: ReturnType<typeof setTimeout> | undefined;
  const wrapped = () => {
    if (t !== undefined) return;
    t = setTimeout(() => {
      t = undefined;
      f();
    }, ms);
  };
  wrapped.cancel = () => {
    clearTimeout(t);
    t = undefined;
  };
  return wrapped;
}

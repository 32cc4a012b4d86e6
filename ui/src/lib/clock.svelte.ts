//! One shared "now" for every countdown and relative time, ticking four times a second while
//! something reads it.
import { createSubscriber } from "svelte/reactivity";

const subscribe = createSubscriber((update) => {
  const t = setInterval(update, 250);
  return () => clearInterval(t);
});

export const clock = {
  get now(): number {
    subscribe();
    return Date.now();
  },
};

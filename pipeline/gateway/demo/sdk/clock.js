// Time as the state machines see it: injected, so that tests advance it
// instead of sleeping.
/** The platform's clock and timers. */
export const systemClock = {
    now: () => Date.now(),
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (h) => globalThis.clearTimeout(h),
};

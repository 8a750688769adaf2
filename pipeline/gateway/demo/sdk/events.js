// A minimal typed event emitter (no dependency on Node's or the DOM's).
export class Emitter {
    listeners = new Map();
    /** Adds a listener; returns a function that removes it. */
    on(event, fn) {
        let set = this.listeners.get(event);
        if (set === undefined) {
            set = new Set();
            this.listeners.set(event, set);
        }
        set.add(fn);
        return () => set.delete(fn);
    }
    emit(event, value) {
        for (const fn of this.listeners.get(event) ?? []) {
            // A throwing listener must not break the protocol state machine.
            try {
                fn(value);
            }
            catch (err) {
                queueMicrotask(() => {
                    throw err;
                });
            }
        }
    }
}

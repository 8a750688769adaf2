// The part of the WebSocket API the SDK uses: the browser's WebSocket and
// the `ws` package's both fit.
/** WebSocket.OPEN */
export const OPEN = 1;
/** The platform's WebSocket (browsers, Node 22+), if there is one. */
export function platformWebSocket() {
    return globalThis.WebSocket;
}

// Package centrifugo is a small client for Centrifugo's bidirectional
// WebSocket protocol (client protocol v2, JSON encoding), written to drive
// Centrifugo v6 as the peer in our benchmarks. It speaks only what the
// benchmark needs: connect (with a connection JWT, see Token), subscribe
// (optionally recovering from a stream position) and publish.
//
// Protocol facts it relies on, checked against centrifugal/protocol v0.19.2
// and centrifugal/centrifuge as used by Centrifugo v6.9.1:
//
//   - Commands are JSON objects {"id":N,"connect"|"subscribe"|"publish":{...}};
//     a frame may carry several, separated by newlines, and the server answers
//     each with a reply carrying the same id, either a result or
//     {"error":{"code":C,"message":M}}.
//   - Replies with id 0 are pushes ({"push":{"channel":...,"pub":{...}}});
//     publication data travels as raw JSON, offset as a number (omitted when 0).
//   - A server frame may also carry several newline-separated replies.
//   - The server pings with an empty reply {}; when the connect result says
//     "pong":true the client must answer with an empty command {}, and an
//     unsolicited {} is a protocol error (disconnect 3501).
//   - The connect result's "ping" is the ping interval in seconds: no ping
//     within it (plus a grace period) means the connection is dead.
//   - The server disconnects by closing the WebSocket with the disconnect
//     code and reason (for example 3500 "invalid token", 3501 "bad request").
package centrifugo

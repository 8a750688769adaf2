// Package presence keeps the table of where each device is connected, built
// from the compacted presence topic. Every announcement carries the epoch of
// the connection it describes, so a late "offline" of an old connection never
// erases a newer "online" of the same device.
package presence

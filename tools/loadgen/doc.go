// Package loadgen is the load generator: it connects many WebSocket
// devices to the gateways, drives an open-loop stream of sends at a fixed
// rate, measures send-to-delivery latency from each send's intended time
// (so a slow system cannot hide its latency by slowing the generator), and
// verifies the ordering guarantees (I1, I2, I3, I5) on everything it saw.
package loadgen

// Package generation names the generations of the partitioned topics (raw,
// sequenced, sequencer state, fanout members) that a repartition moves
// between, reads and writes the control record that lists them, and
// decides which step of a repartition comes next from that record and what
// is observed on the broker. It holds no connections: imctl and the
// services do the I/O (docs/architecture.md, Repartitioning).
package generation

// Package sequencer assigns every conversation a contiguous seq (1, 2, 3, …),
// exactly once, through Kafka transactions. Machine is the pure per-partition
// state machine (ordering, dedup, hold window, membership, rejections);
// Sequencer runs one Machine per claimed partition of the raw topic and
// commits its output, its state changes and the input offsets atomically.
package sequencer

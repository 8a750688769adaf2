// Package floor measures what Kafka alone gives over the pipeline's hops,
// with no logic, so that the pipeline's latency and cost can be read as a
// ratio to it: a producer writes timestamped records to a raw topic (the
// ingest path's kafka-go writer); an exactly-once relay writes one record
// to a sequenced topic and one to a compacted state topic per input, with
// the input offsets, in the shared transactions of one producer (the
// sequencer's wiring); a second relay writes each to a gateway topic and
// commits its offsets periodically (the fanout's wiring); a consumer of
// the gateway topic takes the arrival time (the gateway's wiring). Every
// stage uses the same kafkawire building blocks and settings as the
// services, so anything the wiring costs shows in the floor too.
package floor

// Package imv1 holds the record formats of every Kafka topic of the pipeline
// (generated from records.proto by `make generate`) and the codec that checks
// their version, so a record of an unknown format is refused, not misread.
package imv1

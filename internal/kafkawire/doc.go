// Package kafkawire is the pipeline's Kafka wiring: topic names and creation,
// the single key-to-partition function every producer uses (Java-compatible
// murmur2, plugged into both kafka-go and sarama), and client constructors
// with the settings that exactly-once sequencing depends on.
package kafkawire

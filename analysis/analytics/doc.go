// Package analytics runs the analysts' query pack (schemas/clickhouse/queries)
// against the history store and scans each result into typed rows: messages
// per day and conversation, daily active senders, group size over time,
// sequencing latency by hour, and a per-conversation gap and duplicate count.
// docs/analytics.md describes the queries for people who run them by hand.
package analytics

// Package stacktest connects integration tests to the real Kafka broker and
// ClickHouse server that scripts/stack.sh starts: addresses from the
// environment with local defaults, unique topic and database names per test,
// and cleanup. A missing server fails the test; it never skips.
package stacktest

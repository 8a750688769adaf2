// Package chstore opens the ClickHouse connection of the history store and
// brings its schema up to date from schemas/clickhouse, recording what it
// applied in a version table so every service and test can call Migrate.
package chstore

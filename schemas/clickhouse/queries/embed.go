// Package chqueries holds the analysts' query pack for the history store: one
// SELECT per NAME.sql file, {database} standing for the database and `?` for
// positional parameters, each documented in the file's comment header.
// analysis/analytics runs them from Go; docs/analytics.md shows how to run
// them with clickhouse-client.
package chqueries

import "embed"

// Files holds the *.sql files of this folder.
//
//go:embed *.sql
var Files embed.FS

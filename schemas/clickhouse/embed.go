// Package chschema holds the ClickHouse DDL of the history store as numbered
// migrations (migrations/NNNN_name.sql, one statement each, {database} standing
// for the target database). internal/chstore applies them in order.
package chschema

import "embed"

// Migrations is the migrations folder; file names sort in apply order.
//
//go:embed migrations/*.sql
var Migrations embed.FS

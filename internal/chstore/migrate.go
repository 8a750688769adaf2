package chstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chschema "github.com/seqchat/seqchat/schemas/clickhouse"
)

// Migration is one numbered DDL statement.
type Migration struct {
	Version uint32
	Name    string
	SQL     string // with {database} still in place
}

// Migrations lists the embedded migrations in apply order.
func Migrations() ([]Migration, error) {
	return LoadMigrations(chschema.Migrations, "migrations")
}

// LoadMigrations reads NNNN_name.sql files from dir of fsys, sorted by version.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	seen := map[uint32]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".sql" {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || v == 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		if other, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, v)
		}
		seen[uint32(v)] = name
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: uint32(v), Name: strings.TrimSuffix(name, ".sql"), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Migrate creates the database and applies every migration not yet recorded
// in its schema_migrations table, in order. It is idempotent and safe to run
// from several processes at once: each statement is CREATE ... IF NOT EXISTS,
// and the version table collapses repeated rows. It returns the names applied.
func Migrate(ctx context.Context, conn driver.Conn, database string) ([]string, error) {
	if err := CheckDatabase(database); err != nil {
		return nil, err
	}
	migrations, err := Migrations()
	if err != nil {
		return nil, err
	}
	for _, stmt := range []string{
		"CREATE DATABASE IF NOT EXISTS " + database,
		"CREATE TABLE IF NOT EXISTS " + database + ".schema_migrations " +
			"(version UInt32, name String, applied_at DateTime('UTC')) " +
			"ENGINE = ReplacingMergeTree() ORDER BY version",
	} {
		if err := conn.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("prepare schema_migrations: %w", err)
		}
	}
	applied, err := appliedVersions(ctx, conn, database)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, m := range migrations {
		if applied[m.Version] {
			continue
		}
		sql := strings.ReplaceAll(m.SQL, "{database}", database)
		if err := conn.Exec(ctx, sql); err != nil && !alreadyApplied(err) {
			return done, fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+database+".schema_migrations (version, name, applied_at)")
		if err != nil {
			return done, fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		if err := batch.Append(m.Version, m.Name, time.Now().UTC()); err != nil {
			return done, fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		if err := batch.Send(); err != nil {
			return done, fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		done = append(done, m.Name)
	}
	return done, nil
}

// alreadyApplied: an ADD COLUMN found its column (ClickHouse has no ADD
// COLUMN IF NOT EXISTS before 19.x): another process applied the migration
// at the same moment, or one died before recording it.
func alreadyApplied(err error) bool {
	var exc *clickhouse.Exception
	return errors.As(err, &exc) && exc.Code == 44 && strings.Contains(exc.Message, "already exists")
}

// appliedVersions returns the migration versions recorded in database.
func appliedVersions(ctx context.Context, conn driver.Conn, database string) (map[uint32]bool, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+database+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	out := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		out[v] = true
	}
	return out, rows.Err()
}

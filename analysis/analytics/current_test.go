package analytics_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seqchat/seqchat/analysis/analytics"
	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// EnvChDBPython is the Python with chdb (PyPI's in-process ClickHouse of a
// current version) installed; scripts/chdb.sh installs it for make test.
const EnvChDBPython = "SEQCHAT_TEST_CHDB_PYTHON"

// TestQueryPackOnCurrentClickHouse: the compose file runs a current
// ClickHouse while CI's server is 18.16. Every migration applies on a
// current engine (chdb) as it is, and every analyst query gives there,
// on the same known history, exactly the answer the 18.16 server gives.
func TestQueryPackOnCurrentClickHouse(t *testing.T) {
	python := os.Getenv(EnvChDBPython)
	if python == "" {
		home, _ := os.UserHomeDir()
		python = filepath.Join(home, ".cache", "seqchat", "chdb-venv", "bin", "python")
	}
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("no Python with chdb at %s (%v): install it with scripts/chdb.sh, or set %s", python, err, EnvChDBPython)
	}

	conn, db := stacktest.ClickHouse(t)
	stopMerges(t, conn, db)
	statements := []string{"CREATE DATABASE " + db}
	migrations, err := chstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations {
		statements = append(statements, strings.ReplaceAll(m.SQL, "{database}", db))
	}
	statements = append(statements, "SYSTEM STOP MERGES "+db+".messages")
	for _, part := range knownHistory(t) {
		insert(t, conn, db, part...)
		statements = append(statements, insertSQL(db, part))
	}

	// Literal parameters, as an analyst running a file by hand fills them.
	params := map[string][]string{
		analytics.QueryDailyActiveSenders:      {quote(d1), quote(d3)},
		analytics.QueryGapAndDuplicateAudit:    nil,
		analytics.QueryGroupSizeOverTime:       {quote("g:team")},
		analytics.QueryMessagesPerDay:          {quote(d1), quote(d10)},
		analytics.QuerySequencingLatencyByHour: {quote(d1), quote(d3)},
	}
	names, err := analytics.Names()
	if err != nil {
		t.Fatal(err)
	}
	queries := map[string]string{}
	for _, name := range names {
		sql, err := analytics.SQL(name, db)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := params[name]
		if !ok {
			t.Fatalf("query %s has no parameters in this test", name)
		}
		for _, v := range p {
			sql = strings.Replace(sql, "?", v, 1)
		}
		queries[name] = sql
	}

	req, err := json.Marshal(map[string]any{"statements": statements, "queries": queries})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join("testdata", "chdb_run.py"))
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chdb: %v: %s", err, stderr.String())
	}
	var current struct {
		Version string            `json:"version"`
		Answers map[string]string `json:"answers"`
	}
	if err := json.Unmarshal(out, &current); err != nil {
		t.Fatalf("chdb's answer %q: %v", out, err)
	}
	old := strings.TrimSpace(stacktest.ClickHouseQuery(t, "SELECT version() FORMAT TabSeparated"))
	t.Logf("ClickHouse %s (server) and %s (chdb)", old, current.Version)
	for _, name := range names {
		want := stacktest.ClickHouseQuery(t, queries[name]+"\nFORMAT TabSeparated")
		if want == "" {
			t.Errorf("%s: no rows on %s: the comparison would prove nothing", name, old)
		}
		if got := current.Answers[name]; got != want {
			t.Errorf("%s: ClickHouse %s answers\n%s\nClickHouse %s answers\n%s", name, current.Version, got, old, want)
		}
	}
}

package analytics_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/seqchat/seqchat/analysis/analytics"
)

// TestPackFiles checks what the query pack promises its readers: every file
// documents itself, names the database only through {database}, is a single
// statement, and has as many `?` as the parameters its header lists (and as
// its Go function passes). It needs no server.
func TestPackFiles(t *testing.T) {
	params := map[string]int{
		analytics.QueryDailyActiveSenders:      2,
		analytics.QueryGapAndDuplicateAudit:    0,
		analytics.QueryGroupSizeOverTime:       1,
		analytics.QueryMessagesPerDay:          2,
		analytics.QuerySequencingLatencyByHour: 2,
	}
	names, err := analytics.Names()
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(maps.Keys(params))
	if !slices.Equal(names, want) { // Names is in file-name order
		t.Fatalf("pack holds %v, want %v", names, want)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			sql, err := analytics.SQL(name, "analytics_db")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(sql, "{database}") || !strings.Contains(sql, "analytics_db.messages") {
				t.Errorf("{database} not substituted:\n%s", sql)
			}
			header, body := split(sql)
			if !strings.HasPrefix(header, "-- "+name+": ") {
				t.Errorf("header does not start with %q", "-- "+name+": ")
			}
			for _, section := range []string{"Answers", "Parameters", "Columns", "Dedup"} {
				if !strings.Contains(header, section) {
					t.Errorf("header does not say %s", section)
				}
			}
			if strings.ContainsAny(header, "?$@") {
				t.Error("header holds ?, $ or @, which a hand-run substitution or the driver could take for a placeholder")
			}
			if got := strings.Count(body, "?"); got != params[name] {
				t.Errorf("%d placeholders, want %d", got, params[name])
			}
			if p := params[name]; p > 0 && !strings.Contains(header, "  "+string(rune('0'+p))+". ") {
				t.Errorf("header does not list parameter %d", p)
			}
			if strings.Contains(body, ";") {
				t.Error("more than one statement (or a trailing semicolon the driver rejects)")
			}
			if !strings.HasPrefix(strings.TrimSpace(body), "SELECT") {
				t.Error("statement is not a SELECT")
			}
		})
	}
}

func TestSQLRejectsBadInput(t *testing.T) {
	for name, args := range map[string][2]string{
		"database not an identifier": {analytics.QueryMessagesPerDay, "x; DROP TABLE y"},
		"empty database":             {analytics.QueryMessagesPerDay, ""},
		"unknown query":              {"no_such_query", "seqchat"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := analytics.SQL(args[0], args[1]); err == nil {
				t.Fatal("SQL accepted it")
			}
		})
	}
}

// split cuts a query file into its leading comment lines and the rest.
func split(sql string) (header, body string) {
	lines := strings.Split(sql, "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "--") {
		i++
	}
	return strings.Join(lines[:i], "\n"), strings.Join(lines[i:], "\n")
}

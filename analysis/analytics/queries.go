package analytics

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/seqchat/seqchat/internal/chstore"
	chqueries "github.com/seqchat/seqchat/schemas/clickhouse/queries"
)

// Names of the queries in the pack (file names without ".sql").
const (
	QueryMessagesPerDay          = "messages_per_day_per_conversation"
	QueryDailyActiveSenders      = "daily_active_senders"
	QueryGroupSizeOverTime       = "group_size_over_time"
	QuerySequencingLatencyByHour = "sequencing_latency_by_hour"
	QueryGapAndDuplicateAudit    = "gap_and_duplicate_audit"
)

// Names lists every query of the pack, in file-name order.
func Names() ([]string, error) {
	entries, err := fs.ReadDir(chqueries.Files, ".")
	if err != nil {
		return nil, fmt.Errorf("read query pack: %w", err)
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".sql"); ok && !e.IsDir() {
			names = append(names, name)
		}
	}
	return names, nil
}

// SQL returns query name of the pack with {database} replaced by database,
// comment header included; its `?` placeholders are left for the driver.
func SQL(name, database string) (string, error) {
	if err := chstore.CheckDatabase(database); err != nil {
		return "", err
	}
	body, err := fs.ReadFile(chqueries.Files, name+".sql")
	if err != nil {
		return "", fmt.Errorf("query %s: %w", name, err)
	}
	return strings.ReplaceAll(string(body), "{database}", database), nil
}

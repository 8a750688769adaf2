package chaos

import "testing"

func TestChangesListsWhatGrew(t *testing.T) {
	before := samples{
		"seqchat_gateway_resumes_total{path=heads}":   10,
		"seqchat_gateway_resumes_total{path=history}": 2,
		"seqchat_history_api_read_seconds_sum":        1,
		"seqchat_history_api_read_seconds_count":      10,
		"go_gc_cycles_total":                          5,
	}
	after := samples{
		"seqchat_gateway_resumes_total{path=heads}":   210,
		"seqchat_gateway_resumes_total{path=history}": 2,
		"seqchat_history_api_read_seconds_sum":        3,
		"seqchat_history_api_read_seconds_count":      50,
		"seqchat_gateway_stalls_repaired_total":       3, // new since before
		"go_gc_cycles_total":                          9,
	}
	got := changes(before, after, "seqchat_gateway_", "seqchat_history_api_")
	want := "read_seconds 40 x 50ms, resumes_total{path=heads} +200, stalls_repaired_total +3"
	if got != want {
		t.Errorf("changes = %q, want %q", got, want)
	}
}

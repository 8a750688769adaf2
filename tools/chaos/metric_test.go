package chaos

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMetricSumsTheSeries: a service running an instance per generation
// labels each one's sample; Metric is their sum, and -1 for a metric the
// page lacks.
func TestMetricSumsTheSeries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE seqchat_sequencer_fenced_total counter\n"+
			"seqchat_sequencer_fenced_total{generation=\"1\"} 2\n"+
			"seqchat_sequencer_fenced_total{generation=\"2\"} 3\n"+
			"seqchat_sequencer_fenced_total_other 40\n"+
			"unlabelled 7\n")
	}))
	defer srv.Close()
	s := &Service{AdminAddr: strings.TrimPrefix(srv.URL, "http://")}
	for name, want := range map[string]float64{"seqchat_sequencer_fenced_total": 5, "unlabelled": 7, "missing": -1} {
		if got := s.Metric(name); got != want {
			t.Errorf("Metric(%s) = %v, want %v", name, got, want)
		}
	}
}

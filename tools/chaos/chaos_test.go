package chaos

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/seqchat/seqchat/tools/loadgen"
)

func TestReportFoldsClientAndStoreAnomalies(t *testing.T) {
	r := &Report{Messages: 100000, Kills: 20, Load: &loadgen.Result{
		Counts: loadgen.Counts{Sends: 100000, Accepted: 100000},
		Anomalies: map[string]int{loadgen.AnomalyLost: 1, loadgen.AnomalyUnanswered: 2, loadgen.AnomalyDuplicate: 3,
			loadgen.AnomalySeqConflict: 4, loadgen.AnomalyReorder: 5, loadgen.AnomalySenderOrder: 6, loadgen.AnomalyGap: 7}},
		Store: StoreCheck{Missing: 10, Duplicated: 20, Conflicts: 30, Misplaced: 40, Gaps: 50}}
	want := "anomalies: lost=13 duplicated=57 reordered=51 gaps=57 (messages=100000, kills=20)"
	if got := r.LastLine(); got != want {
		t.Errorf("last line\n got %s\nwant %s", got, want)
	}
	if !r.Failed() {
		t.Error("a report with anomalies did not fail")
	}
	clean := &Report{Messages: 5, Kills: 1, Load: &loadgen.Result{Counts: loadgen.Counts{Sends: 5, Accepted: 5}, Anomalies: map[string]int{}}}
	if clean.Failed() || clean.LastLine() != "anomalies: lost=0 duplicated=0 reordered=0 gaps=0 (messages=5, kills=1)" {
		t.Errorf("clean report: failed %v, %q", clean.Failed(), clean.LastLine())
	}
	clean.Crashes = 1
	if !clean.Failed() {
		t.Error("a report with a crash did not fail")
	}
	clean.Crashes, clean.Load.Counts.Rejected = 0, 1
	if !clean.Failed() {
		t.Error("a report with a refused send did not fail")
	}
}

func TestServiceKillIsPlannedAndAnExitIsACrash(t *testing.T) {
	crashed := make(chan error, 1)
	s := &Service{Name: "sleeper", Bin: "/bin/sleep", Args: []string{"60"}, LogPath: filepath.Join(t.TempDir(), "s.log"),
		onCrash: func(_ *Service, err error) { crashed <- err }}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	s.Kill() // returns once the process is gone and its exit handled
	select {
	case err := <-crashed:
		t.Fatalf("a kill by the harness counted as a crash: %v", err)
	default:
	}
	s.Args = []string{"0"} // exits at once, on its own
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatal("an exit the harness did not cause was not reported")
	}
}

func TestNewRefusesUnknownVictims(t *testing.T) {
	_, err := New(Config{BinDir: "bin", LogDir: t.TempDir(), Out: nil})
	if err == nil {
		t.Error("no Out accepted")
	}
	_, err = New(Config{BinDir: "bin", LogDir: t.TempDir(), Out: testWriter{t}, Victims: []string{"kafka"}})
	if err == nil {
		t.Error("victim kafka accepted")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

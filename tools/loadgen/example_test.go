package loadgen_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/seqchat/seqchat/tools/loadgen"
)

func ExampleGenerator_Run() {
	gen, err := loadgen.New(loadgen.Config{
		Gateways: []string{"ws://127.0.0.1:8090/ws"},
		TokenKey: []byte(strings.Repeat("k", 32)), // the gateways' key
		Rate:     100,
		Duration: 10 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := gen.Run(context.Background(), os.Stderr) // progress on stderr
	if err != nil {
		fmt.Println(err)
		return
	}
	res.WriteSummary(os.Stdout)
	if res.Failed() {
		fmt.Println("anomalies:", res.Anomalies)
	}
}

func ExampleSummarize() {
	var lat []time.Duration
	for i := 1; i <= 1000; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	s := loadgen.Summarize(lat)
	fmt.Println(s.P50ms, s.P99ms, s.P999ms, s.MaxMs)
	// Output: 500 990 999 1000
}

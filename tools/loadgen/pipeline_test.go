package loadgen_test

import (
	"strings"
	"testing"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/testsupport/pipelinetest"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

const (
	partitions   = 4
	serviceToken = "loadgen-service-token-0123456789"
)

var tokenKey = []byte(strings.Repeat("loadgen-", 5))

// startPipeline runs the whole system in this process (sequencer, fanout,
// history sink and read API, and the given gateways) on the real broker
// and ClickHouse, with topics and a database of its own, until the test
// ends (pipelinetest). It returns the gateways' WebSocket URLs and a
// function that stops one gateway early (by id).
func startPipeline(t testing.TB, gateways ...string) (urls []string, stopGateway func(id string)) {
	t.Helper()
	urls, stopGateway, _ = startPipelineOn(t, stacktest.Kafka(t), 1, gateways...)
	return urls, stopGateway
}

// startPipelineOn is startPipeline on the brokers of kcfg, its topics
// replicated replication times; it returns the topics too.
func startPipelineOn(t testing.TB, kcfg kafkawire.Config, replication int16, gateways ...string) (urls []string, stopGateway func(id string), topics kafkawire.Topics) {
	t.Helper()
	p := pipelinetest.Start(t, pipelinetest.Config{Kafka: kcfg, Replication: replication, Partitions: partitions, Prefix: "lg",
		ServiceToken: serviceToken, TokenKey: tokenKey})
	for _, id := range gateways {
		urls = append(urls, p.StartGateway(id).URL())
	}
	return urls, func(id string) { p.Gateway(id).Stop() }, p.Topics
}

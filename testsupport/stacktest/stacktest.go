package stacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/internal/kafkawire"
)

// Environment variables that point the tests at another stack.
const (
	EnvKafkaBrokers   = "SEQCHAT_TEST_KAFKA_BROKERS"
	EnvClickHouseAddr = "SEQCHAT_TEST_CLICKHOUSE_ADDR"
	// EnvClickHouseHTTP is the same server's HTTP interface (default
	// 127.0.0.1:8123, the stack script's).
	EnvClickHouseHTTP = "SEQCHAT_TEST_CLICKHOUSE_HTTP_ADDR"
)

const startHint = "start the stack with `make stack-up` (scripts/stack.sh up)"

// requireStack skips only when the run asked for it with -short (make unit);
// a missing server otherwise fails the test.
func requireStack(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the stack; run without -short")
	}
}

// Kafka is the test broker's client configuration.
func Kafka(t testing.TB) kafkawire.Config {
	t.Helper()
	requireStack(t)
	brokers := os.Getenv(EnvKafkaBrokers)
	if brokers == "" {
		brokers = kafkawire.DefaultBrokers
	}
	return kafkawire.Config{Brokers: kafkawire.ParseBrokers(brokers), ClientID: "seqchat-test"}
}

// Admin is a cluster admin on the test broker, closed at cleanup.
func Admin(t testing.TB) sarama.ClusterAdmin {
	t.Helper()
	admin, err := Kafka(t).NewAdmin()
	if err != nil {
		t.Fatalf("kafka is not reachable (%v); %s", err, startHint)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}

// Name returns a name unique to this test run: prefix, the test's name and
// random hex, with characters Kafka and ClickHouse both accept.
func Name(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	test := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_")
	if len(test) > 40 {
		test = test[:40]
	}
	return strings.ToLower(prefix + "_" + test + "_" + hex.EncodeToString(b))
}

// Topic creates a topic with partitions partitions, deleted at cleanup.
func Topic(t testing.TB, partitions int32, config map[string]string) string {
	t.Helper()
	name := Name(t, "t")
	admin := Admin(t)
	if config == nil {
		config = map[string]string{}
	}
	spec := kafkawire.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: 1, Config: config}
	if err := kafkawire.EnsureTopics(admin, spec); err != nil {
		t.Fatalf("create topic: %v; %s", err, startHint)
	}
	// Created is not yet visible: the broker's metadata catches up a
	// moment later, and a test's first request must not race it.
	if _, err := kafkawire.PartitionCount(admin, name); err != nil {
		t.Fatalf("topic %s created but not in the metadata: %v", name, err)
	}
	t.Cleanup(func() { admin.DeleteTopic(name) })
	return name
}

// CreateTopics creates the topics of specs, deleted at cleanup.
func CreateTopics(t testing.TB, specs ...kafkawire.TopicSpec) {
	t.Helper()
	admin := Admin(t)
	if err := kafkawire.EnsureTopics(admin, specs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range specs {
			deleteTopic(t, admin, s.Name)
		}
	})
}

// deleteTopic deletes a topic, trying three times before it leaves the
// topic behind with a note in the test's log.
func deleteTopic(t testing.TB, admin sarama.ClusterAdmin, name string) {
	t.Helper()
	var err error
	for range 3 {
		if err = admin.DeleteTopic(name); err == nil || errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return
		}
		time.Sleep(time.Second) // the broker's own pace; nothing to wait on
	}
	t.Logf("topic %s left behind: %v", name, err)
}

// ClickHouseQuery runs sql on the test server's HTTP interface and returns
// its answer as text (append a FORMAT clause for the one you want).
func ClickHouseQuery(t testing.TB, sql string) string {
	t.Helper()
	requireStack(t)
	addr := os.Getenv(EnvClickHouseHTTP)
	if addr == "" {
		addr = "127.0.0.1:8123"
	}
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader(sql))
	if err != nil {
		t.Fatalf("clickhouse's HTTP interface is not reachable (%v); %s", err, startHint)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clickhouse: %s: %s\n%s", resp.Status, body, sql)
	}
	return string(body)
}

// ClickHouse connects to the test server and migrates a fresh database,
// dropped at cleanup. It returns the connection and the database name.
func ClickHouse(t testing.TB) (driver.Conn, string) {
	t.Helper()
	requireStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := os.Getenv(EnvClickHouseAddr)
	db := Name(t, "seqchat")
	conn, _, err := chstore.Open(ctx, chstore.Config{Addr: addr, Database: db})
	if err != nil {
		t.Fatalf("clickhouse is not reachable (%v); %s", err, startHint)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
	if _, err := chstore.Migrate(ctx, conn, db); err != nil {
		t.Fatalf("migrate %s: %v", db, err)
	}
	return conn, db
}

// Records reads every record a topic written without transactions holds
// now: each partition from the oldest record to the end offset taken
// first (with transactions, the markers would never come).
func Records(t testing.TB, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	return RecordsOn(t, Kafka(t), topic)
}

// RecordsOn is Records on the brokers of cfg (a private cluster).
func RecordsOn(t testing.TB, cfg kafkawire.Config, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	client, err := sarama.NewClient(cfg.BrokerList(), cfg.Sarama())
	if err != nil {
		t.Fatalf("kafka is not reachable (%v); %s", err, startHint)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		end, err := kafkawire.NewestOffset(ctx, client, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := kafkawire.ConsumePartition(ctx, consumer, topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for next := int64(0); next < end; {
			select {
			case m := <-pc.Messages():
				next = m.Offset + 1
				out = append(out, m)
			case <-ctx.Done():
				pc.Close()
				t.Fatalf("%s/%d: read up to offset %d of %d", topic, p, next, end)
			}
		}
		pc.Close()
	}
	return out
}

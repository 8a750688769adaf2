// Command seqbench measures the sequencer against the raw broker in one run:
// the rate at which the broker takes the raw records (kafka-go, acks=all,
// the ingest path's settings), the rate at which a plain read_committed
// consumer reads them back, then the rate at which a sequencer turns the
// same records into committed sequenced entries, for each partition count
// and batch size asked for. It prints a Markdown table (make bench-sequencer)
// and, with -json, writes the rows as JSON (make bench reads them).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seqbench:", err)
		os.Exit(1)
	}
}

type params struct {
	kafka         kafkawire.Config
	records       int
	bodyBytes     int
	conversations int
}

func run() error {
	fs := flag.NewFlagSet("seqbench", flag.ExitOnError)
	var common service.Common
	common.Register(fs, "")
	records := fs.Int("records", 100000, "raw records per run")
	body := fs.Int("body-bytes", 100, "message body size")
	convs := fs.Int("conversations", 1000, "conversations the records are spread over")
	partitionList := fs.String("partitions", "1,8", "partition counts to measure, comma-separated")
	batchList := fs.String("batch-max-records", "1000", "sequencer batch sizes to measure, comma-separated")
	wait := fs.Duration("batch-max-wait", 0, "sequencer batch wait (0: the default)")
	jsonPath := fs.String("json", "", "also write the rows to this JSON file")
	if err := service.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return err
	}
	p := params{kafka: common.Kafka("seqchat-bench"), records: *records, bodyBytes: *body, conversations: *convs}
	fmt.Printf("records=%d body=%dB conversations=%d GOMAXPROCS=%d\n\n", p.records, p.bodyBytes, p.conversations, runtime.GOMAXPROCS(0))
	fmt.Println("| partitions | batch max records | raw produce rec/s | raw consume rec/s | sequenced rec/s | sequenced / raw produce |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|")
	var rows []Row
	for _, ps := range strings.Split(*partitionList, ",") {
		parts, err := strconv.Atoi(strings.TrimSpace(ps))
		if err != nil {
			return fmt.Errorf("-partitions: %w", err)
		}
		for _, bs := range strings.Split(*batchList, ",") {
			batch, err := strconv.Atoi(strings.TrimSpace(bs))
			if err != nil {
				return fmt.Errorf("-batch-max-records: %w", err)
			}
			r, err := measure(p, int32(parts), batch, *wait)
			if err != nil {
				return err
			}
			fmt.Printf("| %d | %d | %.0f | %.0f | %.0f | %.2f |\n", parts, batch, r.RawProduce, r.RawConsume, r.Sequenced, r.Sequenced/r.RawProduce)
			rows = append(rows, r)
		}
	}
	if *jsonPath == "" {
		return nil
	}
	b, _ := json.MarshalIndent(rows, "", "  ") // plain numbers always marshal
	return os.WriteFile(*jsonPath, b, 0o644)
}

// Row is one measurement, in records per second.
type Row struct {
	Records         int     `json:"records"`
	BodyBytes       int     `json:"body_bytes"`
	Partitions      int32   `json:"partitions"`
	BatchMaxRecords int     `json:"batch_max_records"`
	RawProduce      float64 `json:"raw_produce_per_sec"`
	RawConsume      float64 `json:"raw_consume_per_sec"`
	Sequenced       float64 `json:"sequenced_per_sec"`
}

// measure produces the records to fresh topics, reads them back, then
// sequences them.
func measure(p params, partitions int32, batch int, wait time.Duration) (row Row, err error) {
	row = Row{Records: p.records, BodyBytes: p.bodyBytes, Partitions: partitions, BatchMaxRecords: batch}
	admin, err := p.kafka.NewAdmin()
	if err != nil {
		return row, err
	}
	defer admin.Close()
	prefix := fmt.Sprintf("bench.%d", time.Now().UnixNano())
	topics := kafkawire.PrefixedTopics(prefix)
	specs := kafkawire.CoreSpecs(topics, kafkawire.Layout{Partitions: partitions})
	if err := kafkawire.EnsureTopics(admin, specs...); err != nil {
		return row, err
	}
	defer func() {
		for _, s := range specs {
			admin.DeleteTopic(s.Name)
		}
	}()

	msgs := make([]kafka.Message, p.records)
	body := []byte(strings.Repeat("x", p.bodyBytes))
	for i := range msgs {
		conv := fmt.Sprintf("g:bench-%d", i%p.conversations)
		r := &imv1.RawRecord{Version: imv1.Version, ConversationId: conv, ClientMsgId: fmt.Sprintf("c%d", i),
			SenderUserId: "u1", SenderDeviceId: "d1", ReceivedAtMs: time.Now().UnixMilli(),
			Body: &imv1.RawRecord_Message{Message: &imv1.ChatMessage{ContentType: "text/plain", Body: body}}}
		if i < p.conversations { // the first record of each conversation creates it
			r.Body = &imv1.RawRecord_Control{Control: &imv1.Control{Op: &imv1.Control_CreateGroup{CreateGroup: &imv1.CreateGroup{}}}}
		}
		b, err := imv1.Marshal(r)
		if err != nil {
			return row, err
		}
		msgs[i] = kafka.Message{Key: []byte(conv), Value: b}
	}
	ctx := context.Background()
	prod := p.kafka.NewProducer(topics.Raw)
	start := time.Now()
	const chunk = 5000
	for i := 0; i < len(msgs); i += chunk {
		if err := prod.Write(ctx, msgs[i:min(i+chunk, len(msgs))]...); err != nil {
			return row, err
		}
	}
	row.RawProduce = float64(p.records) / time.Since(start).Seconds()
	prod.Close()

	// From the first record read to the last, as for the sequencer below.
	first, last, err := readEntries(p.kafka, topics.Raw, partitions, p.records)
	if err != nil {
		return row, fmt.Errorf("read back the raw records: %w", err)
	}
	row.RawConsume = float64(p.records-1) / last.Sub(first).Seconds()

	seq, err := sequencer.New(sequencer.Config{Kafka: p.kafka, Topics: topics, GroupID: prefix + ".g",
		BatchMaxRecords: batch, BatchMaxWait: wait, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return row, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- seq.Run(sctx) }()
	first, last, err = readEntries(p.kafka, topics.Sequenced, partitions, p.records)
	cancel()
	if rerr := <-done; err == nil {
		err = rerr
	}
	if err != nil {
		return row, err
	}
	// From the first committed entry to the last: the steady rate, without
	// the group join and state restore before it.
	row.Sequenced = float64(p.records-1) / last.Sub(first).Seconds()
	return row, nil
}

// readEntries reads n committed entries and returns when the first and the
// last arrived.
func readEntries(cfg kafkawire.Config, topic string, partitions int32, n int) (first, last time.Time, err error) {
	consumer, err := sarama.NewConsumer(cfg.BrokerList(), cfg.ConsumerGroupConfig())
	if err != nil {
		return first, last, err
	}
	defer consumer.Close()
	in := make(chan struct{}, 1024)
	for p := int32(0); p < partitions; p++ {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return first, last, err
		}
		defer pc.Close()
		go func() {
			for range pc.Messages() {
				in <- struct{}{}
			}
		}()
	}
	timeout := time.After(10 * time.Minute)
	for i := 0; i < n; i++ {
		select {
		case <-in:
			if i == 0 {
				first = time.Now()
			}
		case <-timeout:
			return first, last, fmt.Errorf("%d of %d entries within 10 minutes", i, n)
		}
	}
	return first, time.Now(), nil
}

// Command seqbench measures the sequencer against the raw broker in one run:
// the rate at which the broker takes the raw records (kafka-go, acks=all,
// the ingest path's settings), then the rate at which a sequencer turns the
// same records into committed sequenced entries, for each partition count
// and batch size asked for. It prints a Markdown table (make bench-sequencer).
package main

import (
	"context"
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

	"github.com/seqchat/seqchat/pipeline/kafkawire"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/pipeline/service"
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
	if err := service.Parse(fs, os.Args[1:], os.Getenv); err != nil {
		return err
	}
	p := params{kafka: common.Kafka("seqchat-bench"), records: *records, bodyBytes: *body, conversations: *convs}
	fmt.Printf("records=%d body=%dB conversations=%d GOMAXPROCS=%d\n\n", p.records, p.bodyBytes, p.conversations, runtime.GOMAXPROCS(0))
	fmt.Println("| partitions | batch max records | raw produce rec/s | sequenced rec/s | sequenced / raw |")
	fmt.Println("|---:|---:|---:|---:|---:|")
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
			raw, seq, err := measure(p, int32(parts), batch, *wait)
			if err != nil {
				return err
			}
			fmt.Printf("| %d | %d | %.0f | %.0f | %.2f |\n", parts, batch, raw, seq, seq/raw)
		}
	}
	return nil
}

// measure produces the records to fresh topics, then sequences them.
func measure(p params, partitions int32, batch int, wait time.Duration) (rawRate, seqRate float64, err error) {
	admin, err := p.kafka.NewAdmin()
	if err != nil {
		return 0, 0, err
	}
	defer admin.Close()
	prefix := fmt.Sprintf("bench.%d", time.Now().UnixNano())
	topics := kafkawire.PrefixedTopics(prefix)
	specs := kafkawire.CoreSpecs(topics, kafkawire.Layout{Partitions: partitions})
	if err := kafkawire.EnsureTopics(admin, specs...); err != nil {
		return 0, 0, err
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
			return 0, 0, err
		}
		msgs[i] = kafka.Message{Key: []byte(conv), Value: b}
	}
	ctx := context.Background()
	prod := p.kafka.NewProducer(topics.Raw)
	start := time.Now()
	const chunk = 5000
	for i := 0; i < len(msgs); i += chunk {
		if err := prod.Write(ctx, msgs[i:min(i+chunk, len(msgs))]...); err != nil {
			return 0, 0, err
		}
	}
	rawRate = float64(p.records) / time.Since(start).Seconds()
	prod.Close()

	seq, err := sequencer.New(sequencer.Config{Kafka: p.kafka, Topics: topics, GroupID: prefix + ".g",
		BatchMaxRecords: batch, BatchMaxWait: wait, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return 0, 0, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- seq.Run(sctx) }()
	first, last, err := readEntries(p.kafka, topics.Sequenced, partitions, p.records)
	cancel()
	if rerr := <-done; err == nil {
		err = rerr
	}
	if err != nil {
		return 0, 0, err
	}
	// From the first committed entry to the last: the steady rate, without
	// the group join and state restore before it.
	return rawRate, float64(p.records-1) / last.Sub(first).Seconds(), nil
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

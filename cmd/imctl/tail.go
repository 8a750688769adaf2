package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/pipeline/sequencer"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// runTail prints a conversation's entries in seq order from the sequenced
// topic (read_committed), checking contiguity as it goes.
func runTail(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("imctl tail", flag.ContinueOnError)
	var common service.Common
	common.Register(fs, "")
	conv := fs.String("conversation", "", "conversation id (required)")
	topic := fs.String("seq-topic", kafkawire.Topics{}.WithDefaults().Sequenced, "topic of sequenced records")
	idle := fs.Duration("idle", 0, "exit after this long without a new entry (0: follow until interrupted)")
	notices := fs.Bool("notices", false, "also print notices to senders (rejections, duplicates)")
	if err := service.Parse(fs, args, os.Getenv); err != nil {
		return err
	}
	if *conv == "" {
		return errors.New("-conversation is required")
	}
	cfg := common.Kafka("imctl")
	admin, err := cfg.NewAdmin()
	if err != nil {
		return err
	}
	n, err := kafkawire.PartitionCount(admin, *topic)
	admin.Close()
	if err != nil {
		return err
	}
	consumer, err := sarama.NewConsumer(cfg.BrokerList(), cfg.ConsumerGroupConfig())
	if err != nil {
		return err
	}
	defer consumer.Close()
	p := int32(kafkawire.PartitionFor([]byte(*conv), int(n)))
	pc, err := consumer.ConsumePartition(*topic, p, sarama.OffsetOldest)
	if err != nil {
		return err
	}
	defer pc.Close()

	check := sequencer.NewChecker()
	var timeout <-chan time.Time
	for {
		if *idle > 0 {
			timeout = time.After(*idle)
		}
		select {
		case <-ctx.Done():
			return check.Err()
		case <-timeout:
			return check.Err()
		case err := <-pc.Errors():
			return err
		case m := <-pc.Messages():
			if string(m.Key) != *conv {
				continue
			}
			r := &imv1.SequencedRecord{}
			if err := imv1.Unmarshal(m.Value, r); err != nil {
				fmt.Fprintf(os.Stderr, "offset %d: %v\n", m.Offset, err)
				continue
			}
			check.Add(r)
			if r.Seq > 0 || *notices {
				fmt.Println(formatEntry(r))
			}
		}
	}
}

func formatEntry(r *imv1.SequencedRecord) string {
	at := time.UnixMilli(r.SequencedAtMs).UTC().Format("2006-01-02 15:04:05.000")
	who := r.SenderUserId + "/" + r.SenderDeviceId
	var what string
	switch b := r.Body.(type) {
	case *imv1.SequencedRecord_Message:
		what = fmt.Sprintf("%q", b.Message.Body)
	case *imv1.SequencedRecord_Membership:
		what = fmt.Sprintf("[%s %v]", b.Membership.Kind, b.Membership.UserIds)
	case *imv1.SequencedRecord_Rejection:
		what = fmt.Sprintf("(rejected %s: %s)", b.Rejection.Code, b.Rejection.Message)
	case *imv1.SequencedRecord_Duplicate:
		what = "(duplicate of an older send)"
		if b.Duplicate.OriginalSeq > 0 {
			what = fmt.Sprintf("(duplicate of seq %d)", b.Duplicate.OriginalSeq)
		}
	}
	gap := ""
	if r.PredecessorMissing {
		gap = " (an earlier send of this device never arrived)"
	}
	return fmt.Sprintf("%6d  %s  %-24s %s%s", r.Seq, at, who, what, gap)
}

package history

import (
	"errors"
	"fmt"

	"github.com/seqchat/seqchat/schemas/imv1"
)

// Kind is the kind column of the messages table.
type Kind string

// The kinds of entry: a chat message, a membership event, or a revision
// (an edit or a recall) of an earlier message.
const (
	KindMessage Kind = "message"
	KindCreated Kind = "created"
	KindJoined  Kind = "joined"
	KindLeft    Kind = "left"
	KindKicked  Kind = "kicked"
	KindEdit    Kind = "edit"
	KindRecall  Kind = "recall"
)

// ErrNotEntry means a sequenced record cannot be a history row: a sink
// dead-letters it rather than guessing.
var ErrNotEntry = errors.New("not a history entry")

// Row is one row of the messages table: one sequenced entry.
type Row struct {
	ConversationID     string
	Seq                uint64
	MsgID              string
	ClientMsgID        string
	SenderUserID       string
	SenderDeviceID     string
	ClientSeq          uint64
	Kind               Kind
	MemberUserIDs      []string // membership events: the users whose membership changed
	Title              string   // created: the group's title
	ContentType        string   // messages and edits
	Body               string   // messages and edits: the body's bytes
	PredecessorMissing bool
	ReceivedAtMs       uint64
	SequencedAtMs      uint64
	TargetSeq          uint64 // revisions: the message they revise
	Epoch              uint64 // the epoch of the conversation's stream (SequencedRecord.epoch)
	// Edited and Recalled are set by reads, not stored: the message (or,
	// Recalled, an edit of it) as its revisions left it.
	Edited, Recalled bool
}

// IsNotice reports whether r is a notice to its sender (seq 0): notices are
// outside the conversation's order and never stored in history.
func IsNotice(r *imv1.SequencedRecord) bool { return r.GetSeq() == 0 }

// RowOf maps an entry (seq >= 1) to its row. Errors wrap ErrNotEntry: a
// notice, an entry without a conversation, or a body that is neither a
// message nor a known membership event.
func RowOf(r *imv1.SequencedRecord) (Row, error) {
	if IsNotice(r) {
		return Row{}, fmt.Errorf("seq 0 is a notice: %w", ErrNotEntry)
	}
	if r.ConversationId == "" {
		return Row{}, fmt.Errorf("seq %d has no conversation id: %w", r.Seq, ErrNotEntry)
	}
	row := Row{
		ConversationID:     r.ConversationId,
		Seq:                r.Seq,
		MsgID:              r.MsgId,
		ClientMsgID:        r.ClientMsgId,
		SenderUserID:       r.SenderUserId,
		SenderDeviceID:     r.SenderDeviceId,
		ClientSeq:          r.ClientSeq,
		MemberUserIDs:      []string{},
		PredecessorMissing: r.PredecessorMissing,
		ReceivedAtMs:       nonNegative(r.ReceivedAtMs),
		SequencedAtMs:      nonNegative(r.SequencedAtMs),
		Epoch:              r.Epoch,
	}
	switch body := r.Body.(type) {
	case *imv1.SequencedRecord_Message:
		row.Kind = KindMessage
		row.ContentType = body.Message.GetContentType()
		row.Body = string(body.Message.GetBody())
	case *imv1.SequencedRecord_Membership:
		kind, ok := kindOf(body.Membership.GetKind())
		if !ok {
			return Row{}, fmt.Errorf("%s seq %d: membership kind %v: %w", r.ConversationId, r.Seq, body.Membership.GetKind(), ErrNotEntry)
		}
		row.Kind = kind
		row.MemberUserIDs = append(row.MemberUserIDs, body.Membership.GetUserIds()...)
		row.Title = body.Membership.GetTitle()
	case *imv1.SequencedRecord_Revision:
		row.TargetSeq = body.Revision.GetTargetSeq()
		switch {
		case body.Revision.GetEdit() != nil:
			row.Kind = KindEdit
			row.ContentType = body.Revision.GetEdit().GetContentType()
			row.Body = string(body.Revision.GetEdit().GetBody())
		case body.Revision.GetRecall() != nil:
			row.Kind = KindRecall
		default:
			return Row{}, fmt.Errorf("%s seq %d: revision without an op: %w", r.ConversationId, r.Seq, ErrNotEntry)
		}
	default:
		return Row{}, fmt.Errorf("%s seq %d: body %T is not a message, membership event or revision: %w", r.ConversationId, r.Seq, r.Body, ErrNotEntry)
	}
	return row, nil
}

func kindOf(k imv1.MembershipEvent_Kind) (Kind, bool) {
	switch k {
	case imv1.MembershipEvent_CREATED:
		return KindCreated, true
	case imv1.MembershipEvent_JOINED:
		return KindJoined, true
	case imv1.MembershipEvent_LEFT:
		return KindLeft, true
	case imv1.MembershipEvent_KICKED:
		return KindKicked, true
	}
	return "", false
}

// nonNegative keeps a clock before 1970 (a broken clock) from wrapping
// around in the UInt64 columns.
func nonNegative(ms int64) uint64 { return uint64(max(ms, 0)) }

// ReadRow is one row of the read_positions table: a read receipt.
type ReadRow struct {
	ConversationID string
	UserID         string
	Epoch          uint64
	ReadSeq        uint64
	DeviceID       string // the device that marked it
	SequencedAtMs  uint64
}

// ReadRowOf maps a read receipt (a notice) to its row; ok is false for
// every other record, and for a receipt without a user or position.
func ReadRowOf(r *imv1.SequencedRecord) (ReadRow, bool) {
	rr := r.GetReadReceipt()
	if rr == nil || !IsNotice(r) || r.ConversationId == "" || rr.UserId == "" || rr.ReadSeq == 0 {
		return ReadRow{}, false
	}
	return ReadRow{ConversationID: r.ConversationId, UserID: rr.UserId, Epoch: r.Epoch, ReadSeq: rr.ReadSeq,
		DeviceID: r.SenderDeviceId, SequencedAtMs: nonNegative(r.SequencedAtMs)}, true
}

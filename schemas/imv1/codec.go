package imv1

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Version is the record format version this code writes and reads.
const Version uint32 = 1

// ErrUnknownVersion means a record was written by a format this code does not
// know. Callers treat it as a poison record (dead-letter it), never guess.
var ErrUnknownVersion = errors.New("unknown record version")

// ErrMalformed means the bytes are not a record of the expected type.
var ErrMalformed = errors.New("malformed record")

// Record is any top-level topic record: it carries a format version.
type Record interface {
	proto.Message
	GetVersion() uint32
}

// Marshal encodes r after checking that it carries the current version, so a
// writer that forgot to set it fails here and not in every reader.
func Marshal(r Record) ([]byte, error) {
	if v := r.GetVersion(); v != Version {
		return nil, fmt.Errorf("marshal %T: version %d, want %d: %w", r, v, Version, ErrUnknownVersion)
	}
	b, err := proto.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("marshal %T: %w", r, err)
	}
	return b, nil
}

// Unmarshal decodes b into r and checks its version. Errors wrap
// ErrMalformed or ErrUnknownVersion.
func Unmarshal(b []byte, r Record) error {
	if err := proto.Unmarshal(b, r); err != nil {
		return fmt.Errorf("decode %T: %w: %v", r, ErrMalformed, err)
	}
	if v := r.GetVersion(); v != Version {
		return fmt.Errorf("decode %T: version %d: %w", r, v, ErrUnknownVersion)
	}
	return nil
}

// RevisionReach bounds how far after a message its revisions (edits,
// recalls) come: a revision's seq is at most this many seqs past the seq
// it revises (the sequencer refuses others with too_old), so readers find
// a message's revisions in a bounded range of the conversation.
const RevisionReach = 1000

package sequencer

import (
	"strings"

	"github.com/seqchat/seqchat/internal/generation"
)

// State store keys. Ids never contain 0x00 (validated on the raw record), so
// 0x00-separated parts cannot collide.
const sep = "\x00"

func headKey(conv string) string         { return conv + headSuffix }
func memberKey(conv, user string) string { return conv + sep + "m" + sep + user }
func recentKey(conv, sender, cmid string) string {
	return conv + sep + "d" + sep + sender + sep + cmid
}
func cursorKey(conv string, d device) string {
	return conv + sep + "c" + sep + d.user + sep + d.device
}
func readKey(conv, user string) string { return conv + sep + "r" + sep + user }
func heldKey(conv string, d device, cmid string) string {
	return conv + sep + "w" + sep + d.user + sep + d.device + sep + cmid
}

// headSuffix ends every head key.
const headSuffix = sep + "h"

// markerKey holds the restore marker; it sorts apart from every conversation.
const markerKey = sep + "marker"

// fenceKey holds the partition's fence (imv1.FenceEntry): it was handed
// over to a newer generation, and importedKey the record of its import
// from an older one (imv1.ImportEntry). Both sort apart from every
// conversation.
const (
	fenceKey    = generation.FenceKey
	importedKey = generation.ImportedKey
)

// conversationOfKey is the conversation a state key belongs to; "" for
// the partition's own entries (marker, fence, import).
func conversationOfKey(key string) string {
	conv, _, _ := strings.Cut(key, sep)
	return conv
}

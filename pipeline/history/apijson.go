package history

import "github.com/seqchat/seqchat/schemas/historyapi"

// pageJSON is a page as the read API writes it (historyapi).
func pageJSON(p Page) historyapi.Page {
	out := historyapi.Page{ConversationID: p.ConversationID, Epoch: p.Epoch, Entries: make([]historyapi.Entry, 0, len(p.Entries)),
		CompleteUpTo: p.CompleteUpTo, NextAfterSeq: p.NextAfterSeq}
	for _, r := range p.Entries {
		e := historyapi.Entry{Seq: r.Seq, Epoch: r.Epoch, MsgID: r.MsgID, SenderUserID: r.SenderUserID, SenderDeviceID: r.SenderDeviceID,
			ClientMsgID: r.ClientMsgID, SequencedAtMs: int64(r.SequencedAtMs), PredecessorMissing: r.PredecessorMissing,
			Edited: r.Edited, Recalled: r.Recalled}
		switch {
		case r.Kind == KindEdit || r.Kind == KindRecall:
			e.Revision = &historyapi.Revision{Op: string(r.Kind), TargetSeq: r.TargetSeq}
			if r.Kind == KindEdit && !r.Recalled {
				e.Message = &historyapi.Message{ContentType: r.ContentType, Body: r.Body}
			}
		case r.Kind == KindMessage:
			if !r.Recalled {
				e.Message = &historyapi.Message{ContentType: r.ContentType, Body: r.Body}
			}
		default:
			users := r.MemberUserIDs
			if users == nil {
				users = []string{} // "user_ids": [], never null
			}
			e.Event = &historyapi.Event{Kind: string(r.Kind), UserIDs: users, Title: r.Title}
		}
		out.Entries = append(out.Entries, e)
	}
	return out
}

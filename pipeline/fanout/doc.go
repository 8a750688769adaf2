// Package fanout routes each sequenced entry to the gateways where its
// recipients' devices are connected. Members tracks who receives what from
// the membership events in the same stream, so a membership change at seq k
// applies exactly from k (I4).
package fanout

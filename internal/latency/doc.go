// Package latency is the one bucket layout of the pipeline's per-hop
// latency histograms (ingest ack, raw to committed, sequenced to routed,
// routed to written), so that every service exports them alike and the
// benchmark can read quantiles back out of any two scrapes.
package latency

// Package pipelinetest runs the whole pipeline in the test's process:
// sequencer, fanout, history sink and read API, and any number of gateways,
// on the real broker and ClickHouse (package stacktest), with topics and a
// database of the test's own, until the test ends. The gateway's end-to-end
// tests and the load generator's tests share it; each component can be
// stopped and started again with a changed configuration.
//
// It lives apart from stacktest because it imports every component, and
// the components' own tests import stacktest.
package pipelinetest

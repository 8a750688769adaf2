package kafkawire

import "github.com/rcrowley/go-metrics"

// noMetrics is a go-metrics registry that keeps nothing: sarama records
// meters and histograms on every request (a few percent of each service's
// CPU under load), and nothing reads them; the services export their own
// Prometheus metrics.
type noMetrics struct{}

func (noMetrics) Each(func(string, any))            {}
func (noMetrics) Get(string) any                    { return nil }
func (noMetrics) GetAll() map[string]map[string]any { return nil }
func (noMetrics) Register(string, any) error        { return nil }
func (noMetrics) RunHealthchecks()                  {}
func (noMetrics) Unregister(string)                 {}
func (noMetrics) UnregisterAll()                    {}

// GetOrRegister returns a metric that records nothing, of the kind the
// constructor (or metric) it is given would make.
func (noMetrics) GetOrRegister(_ string, m any) any {
	switch m.(type) {
	case func() metrics.Meter, metrics.Meter:
		return metrics.NilMeter{}
	case func() metrics.Histogram, metrics.Histogram:
		return metrics.NilHistogram{}
	case func() metrics.Counter, metrics.Counter:
		return metrics.NilCounter{}
	case func() metrics.Gauge, metrics.Gauge:
		return metrics.NilGauge{}
	case func() metrics.Timer, metrics.Timer:
		return metrics.NilTimer{}
	}
	return m
}

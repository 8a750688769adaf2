package service

// DefaultAdminAddr is the admin address (/metrics, /healthz, /readyz) each
// binary listens on by default; docker-compose.yml uses the same ports.
func DefaultAdminAddr(binary string) string {
	switch binary {
	case "ingest":
		return "127.0.0.1:9181"
	case "sequencer":
		return "127.0.0.1:9182"
	case "fanout":
		return "127.0.0.1:9183"
	case "history":
		return "127.0.0.1:9184"
	case "gateway":
		return "127.0.0.1:9185"
	}
	return "127.0.0.1:0"
}

// Services are the long-running binaries under cmd/.
func Services() []string { return []string{"ingest", "sequencer", "fanout", "history", "gateway"} }

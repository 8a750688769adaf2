// Package service is the operational shell every binary shares: flags with
// environment fallbacks, the structured logger, the admin HTTP server
// (/metrics, /healthz, /readyz) and running until SIGINT or SIGTERM.
package service

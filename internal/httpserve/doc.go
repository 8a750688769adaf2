// Package httpserve runs an HTTP server on a listener until its context ends,
// with the timeouts and the bounded graceful shutdown every server of the
// pipeline uses (the services' APIs, the gateway, the admin endpoints).
package httpserve

// Package auth issues and verifies the signed tokens that authenticate a
// user's device to the gateway: HMAC-SHA256 over a small JSON payload (user,
// device, expiry). The signing key is shared by the token issuer and the
// gateways; nothing else is needed to verify a token. BearerToken checks the
// service token that guards the internal HTTP APIs (ingest, history).
package auth

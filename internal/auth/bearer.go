package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// BearerToken checks requests' "Authorization: Bearer <token>" against one
// service token.
type BearerToken struct{ digest [sha256.Size]byte }

// NewBearerToken accepts requests presenting token.
func NewBearerToken(token string) BearerToken {
	return BearerToken{digest: sha256.Sum256([]byte(token))}
}

// Allows compares SHA-256 digests in constant time, so neither the token's
// bytes nor its length leak through timing.
func (b BearerToken) Allows(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], b.digest[:]) == 1
}

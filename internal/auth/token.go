package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// MinKeyBytes is the shortest signing key accepted.
const MinKeyBytes = 32

// Errors of Verify; the protocol codes are token_invalid and token_expired.
var (
	ErrInvalid = errors.New("token invalid")
	ErrExpired = errors.New("token expired")
)

// Claims are what a token says about its bearer.
type Claims struct {
	UserID    string
	DeviceID  string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

type payload struct {
	Version int    `json:"v"`
	User    string `json:"u"`
	Device  string `json:"d"`
	Issued  int64  `json:"iat"`
	Expires int64  `json:"exp"`
}

// idPattern is the protocol's id syntax; user ids may not contain ':' (dm
// conversation ids are built from them).
var (
	userPattern   = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,128}$`)
	devicePattern = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)
)

// Tokens are exactly two strict base64url parts: one spelling per token
// (the decoder would otherwise skip newlines and accept stray bits).
var (
	tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
	b64          = base64.RawURLEncoding.Strict()
)

// Signer issues and verifies tokens with one key.
type Signer struct{ key []byte }

// NewSigner returns a signer for key (at least MinKeyBytes bytes).
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("token signing key has %d bytes, want at least %d", len(key), MinKeyBytes)
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

// Issue signs c. UserID and DeviceID must be valid protocol ids and the
// expiry after the issue time.
func (s *Signer) Issue(c Claims) (string, error) {
	if !userPattern.MatchString(c.UserID) || !devicePattern.MatchString(c.DeviceID) {
		return "", fmt.Errorf("issue token: user %q or device %q is not a valid id", c.UserID, c.DeviceID)
	}
	if !c.ExpiresAt.After(c.IssuedAt) {
		return "", errors.New("issue token: expiry must be after the issue time")
	}
	body, err := json.Marshal(payload{Version: 1, User: c.UserID, Device: c.DeviceID,
		Issued: c.IssuedAt.Unix(), Expires: c.ExpiresAt.Unix()})
	if err != nil {
		return "", err
	}
	p := b64.EncodeToString(body)
	return p + "." + b64.EncodeToString(s.mac(p)), nil
}

// Verify checks the signature first, then the expiry at now. Errors wrap
// ErrInvalid or ErrExpired.
func (s *Signer) Verify(token string, now time.Time) (Claims, error) {
	if len(token) > 4096 || !tokenPattern.MatchString(token) {
		return Claims{}, fmt.Errorf("%w: not <payload>.<signature> in base64url", ErrInvalid)
	}
	p, sig, _ := strings.Cut(token, ".")
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(p)) {
		return Claims{}, fmt.Errorf("%w: bad signature", ErrInvalid)
	}
	body, err := b64.DecodeString(p)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload encoding", ErrInvalid)
	}
	var pl payload
	if err := json.Unmarshal(body, &pl); err != nil || pl.Version != 1 ||
		!userPattern.MatchString(pl.User) || !devicePattern.MatchString(pl.Device) {
		return Claims{}, fmt.Errorf("%w: payload", ErrInvalid)
	}
	c := Claims{UserID: pl.User, DeviceID: pl.Device, IssuedAt: time.Unix(pl.Issued, 0).UTC(), ExpiresAt: time.Unix(pl.Expires, 0).UTC()}
	if !now.Before(c.ExpiresAt) {
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, c.ExpiresAt.Format(time.RFC3339))
	}
	return c, nil
}

func (s *Signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

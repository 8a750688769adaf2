package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func signer(t testing.TB, key string) *Signer {
	t.Helper()
	s, err := NewSigner([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIssueAndVerify(t *testing.T) {
	s := signer(t, strings.Repeat("k", 32))
	tok, err := s.Issue(Claims{UserID: "alice", DeviceID: "phone:1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Verify(tok, now.Add(59*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != "alice" || c.DeviceID != "phone:1" || !c.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("claims = %+v", c)
	}
}

func TestVerifyRefuses(t *testing.T) {
	s := signer(t, strings.Repeat("k", 32))
	other := signer(t, strings.Repeat("x", 32))
	good, _ := s.Issue(Claims{UserID: "alice", DeviceID: "d", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	p, sig, _ := strings.Cut(good, ".")
	forgedPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"u":"mallory","d":"d","iat":0,"exp":9999999999}`))
	fromOtherKey, _ := other.Issue(Claims{UserID: "alice", DeviceID: "d", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"expired", good, now.Add(time.Hour), ErrExpired},
		{"other key", fromOtherKey, now, ErrInvalid},
		{"payload swapped", forgedPayload + "." + sig, now, ErrInvalid},
		{"signature cut", p + "." + sig[:10], now, ErrInvalid},
		{"no dot", p, now, ErrInvalid},
		{"empty", "", now, ErrInvalid},
		{"garbage", "###.###", now, ErrInvalid},
		{"huge", strings.Repeat("a", 5000) + "." + sig, now, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Verify(tt.token, tt.at); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestIssueRefusesBadClaims(t *testing.T) {
	s := signer(t, strings.Repeat("k", 32))
	for _, c := range []Claims{
		{UserID: "a:b", DeviceID: "d", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
		{UserID: "a", DeviceID: "", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
		{UserID: "a", DeviceID: "d", IssuedAt: now, ExpiresAt: now},
	} {
		if _, err := s.Issue(c); err == nil {
			t.Errorf("Issue(%+v) succeeded", c)
		}
	}
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Error("NewSigner accepted a 5-byte key")
	}
}

// FuzzVerify: no input panics, and only a token this signer issued verifies.
func FuzzVerify(f *testing.F) {
	s := signer(f, strings.Repeat("k", 32))
	good, _ := s.Issue(Claims{UserID: "alice", DeviceID: "d", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	f.Add(good)
	f.Add("a.b")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.Verify(token, now)
		if err == nil && token != good {
			// A different string can only verify if it decodes to the same
			// payload and signature (base64 has no other spelling here).
			again, ierr := s.Issue(c)
			if ierr != nil || again != token {
				t.Fatalf("a token this signer did not issue verified: %q", token)
			}
		}
	})
}

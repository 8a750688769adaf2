package gateway

import (
	"math"
	"math/rand/v2"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"sync"
	"syscall"
	"time"
)

// Values of the reason label of seqchat_gateway_connections_refused_total.
const (
	refusedConnections = "connections" // MaxConnections (file descriptors)
	refusedMemory      = "memory"      // MemoryLimit
	refusedPerUser     = "per_user"    // MaxConnectionsPerUser
)

// Defaults of the connection limits.
const (
	// DefaultFDReserve is how many file descriptors MaxConnections leaves
	// for the gateway's own connections (brokers, history, metrics): a
	// gateway that spends them all on clients cannot read history or
	// produce, and fails the clients it has.
	DefaultFDReserve = 512
	// DefaultMaxConnectionsPerUser bounds one user's connections at one
	// gateway (a client reconnecting in a loop without closing, or one
	// user's devices taking a gateway's capacity).
	DefaultMaxConnectionsPerUser = 32
	// memoryLimitShare of GOMEMLIMIT is where new connections stop being
	// taken when the limit is set: above it the collector runs all the time.
	memoryLimitShare = 0.9
	// limitRetryAfter (plus up to as much again, at random) is the retry
	// hint of a connection refused for capacity: a reconnect storm comes
	// back spread out, or goes to another gateway.
	limitRetryAfter = time.Second
)

// connLimits decides, before welcome, whether the gateway takes one more
// connection, so that a gateway near a limit refuses new devices with a
// retry hint instead of failing the ones it has. Safe for concurrent use.
type connLimits struct {
	maxConns  int    // connections open, hellos in progress included; 0: none
	perUser   int    // connections of one user that said hello; 0: none
	maxMemory uint64 // bytes the Go runtime holds from the OS; 0: none

	mu    sync.Mutex
	open  int
	users map[string]int
}

// newConnLimits resolves the configured limits (Config's conventions: 0
// derives the default, negative means none).
func newConnLimits(maxConns, fdReserve, perUser int, memoryLimit int64) *connLimits {
	l := &connLimits{users: map[string]int{}}
	switch {
	case maxConns > 0:
		l.maxConns = maxConns
	case maxConns == 0:
		l.maxConns = fdConnections(openFileLimit(), fdReserve)
	}
	switch {
	case perUser > 0:
		l.perUser = perUser
	case perUser == 0:
		l.perUser = DefaultMaxConnectionsPerUser
	}
	switch {
	case memoryLimit > 0:
		l.maxMemory = uint64(memoryLimit)
	case memoryLimit == 0:
		if gomem := debug.SetMemoryLimit(-1); gomem < math.MaxInt64 {
			l.maxMemory = uint64(float64(gomem) * memoryLimitShare)
		}
	}
	return l
}

// fdConnections is how many client connections fit in nofile descriptors
// with reserve kept back (at least 1; 0, no limit, when nofile is unknown).
func fdConnections(nofile uint64, reserve int) int {
	if nofile == 0 || nofile > math.MaxInt32 {
		return 0
	}
	return max(int(nofile)-max(reserve, 0), 1)
}

// openFileLimit is the process's soft limit of open files (Go raises it
// to the hard limit at start); 0 if unknown.
func openFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return r.Cur
}

// processMemory is what the Go runtime holds from the OS, less what it has
// given back.
func processMemory() uint64 {
	s := []runtimemetrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	runtimemetrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// take counts a new connection; when one more does not fit, it returns
// the reason and counts nothing.
func (l *connLimits) take() (refused string) {
	if l.maxMemory > 0 && processMemory() >= l.maxMemory {
		return refusedMemory
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxConns > 0 && l.open >= l.maxConns {
		return refusedConnections
	}
	l.open++
	return ""
}

// release ends a connection take counted.
func (l *connLimits) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
}

// takeUser counts a connection of user; false when the user has perUser
// already.
func (l *connLimits) takeUser(user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perUser > 0 && l.users[user] >= l.perUser {
		return false
	}
	l.users[user]++
	return true
}

// releaseUser ends a connection takeUser counted.
func (l *connLimits) releaseUser(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.users[user]--; l.users[user] <= 0 {
		delete(l.users, user)
	}
}

// retryAfter is a refused connection's retry hint.
func retryAfter() time.Duration {
	return limitRetryAfter + rand.N(limitRetryAfter)
}

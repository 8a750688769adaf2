package chstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says where the history store lives.
type Config struct {
	// Addr is the native-protocol address. Empty means 127.0.0.1:9000.
	Addr string
	// Database holds the project's tables. Empty means "seqchat".
	Database string
	// Username empty means "default"; Password may be empty.
	Username string
	Password string
	// DialTimeout zero means 5s.
	DialTimeout time.Duration
}

// DefaultAddr and DefaultDatabase are the defaults of Config.
const (
	DefaultAddr     = "127.0.0.1:9000"
	DefaultDatabase = "seqchat"
)

// identifier is what a database name may be: it is written into SQL
// (ClickHouse takes no placeholder for it), so nothing else gets through.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckDatabase refuses a database name that is not a plain identifier.
func CheckDatabase(name string) error {
	if !identifier.MatchString(name) {
		return fmt.Errorf("clickhouse database %q: want letters, digits and underscores", name)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.Username == "" {
		c.Username = "default"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if err := CheckDatabase(c.Database); err != nil {
		return err
	}
	if c.DialTimeout < 0 {
		return errors.New("clickhouse dial timeout must not be negative")
	}
	return nil
}

// Open connects and pings. The session's default database stays "default"
// (Database may not exist before Migrate), so queries name Database explicitly.
func Open(ctx context.Context, cfg Config) (driver.Conn, Config, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, cfg, err
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:    clickhouse.Native, // 18.16 has no usable HTTP interface for clickhouse-go
		Addr:        []string{cfg.Addr},
		Auth:        clickhouse.Auth{Database: "default", Username: cfg.Username, Password: cfg.Password},
		DialTimeout: cfg.DialTimeout,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	})
	if err != nil {
		return nil, cfg, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, cfg, fmt.Errorf("ping clickhouse %s: %w", cfg.Addr, err)
	}
	return conn, cfg, nil
}

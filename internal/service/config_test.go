package service

import (
	"flag"
	"strings"
	"testing"
)

func TestParsePrecedence(t *testing.T) {
	env := map[string]string{
		"SEQCHAT_KAFKA_BROKERS": "kafka:19092",
		"SEQCHAT_LOG_LEVEL":     "debug",
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c Common
	c.Register(fs, "127.0.0.1:1")
	if err := Parse(fs, []string{"-log-level", "warn"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.KafkaBrokers != "kafka:19092" {
		t.Errorf("KafkaBrokers = %q, want the environment's kafka:19092", c.KafkaBrokers)
	}
	if c.LogLevel != "warn" {
		t.Errorf("LogLevel = %q, want the flag's warn over the environment's debug", c.LogLevel)
	}
	if c.AdminAddr != "127.0.0.1:1" {
		t.Errorf("AdminAddr = %q, want the default", c.AdminAddr)
	}
}

func TestParseRejectsBadEnvironment(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Int("partitions", 8, "")
	err := Parse(fs, nil, func(k string) string {
		if k == "SEQCHAT_PARTITIONS" {
			return "many"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "SEQCHAT_PARTITIONS") {
		t.Fatalf("error = %v, want one naming SEQCHAT_PARTITIONS", err)
	}
}

func TestLoggerRejectsUnknownSettings(t *testing.T) {
	for _, c := range []Common{{LogLevel: "loud", LogFormat: "json"}, {LogLevel: "info", LogFormat: "xml"}} {
		if _, err := c.Logger("t"); err == nil {
			t.Errorf("Logger accepted level %q format %q", c.LogLevel, c.LogFormat)
		}
	}
}

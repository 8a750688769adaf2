package service_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/internal/service"
)

// TestComposeAgreesWithCode loads docker-compose.yml with the Compose spec
// loader and checks it against the binaries themselves: every SEQCHAT_*
// variable is a flag the service's binary really has (asked with -h), admin
// ports and healthchecks match the binary's default admin port, Kafka and
// ClickHouse are published on the ports the code defaults to, and every
// service waits for a healthy stack.
func TestComposeAgreesWithCode(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithName("seqchat"), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}

	t.Run("stack ports", func(t *testing.T) {
		published := func(name string) []string {
			svc, err := project.GetService(name)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, p := range svc.Ports {
				out = append(out, p.Published)
			}
			return out
		}
		if want := port(t, kafkawire.DefaultBrokers); !slices.Contains(published("kafka"), want) {
			t.Errorf("kafka publishes %v, code defaults to port %s", published("kafka"), want)
		}
		if want := port(t, chstore.DefaultAddr); !slices.Contains(published("clickhouse"), want) {
			t.Errorf("clickhouse publishes %v, code defaults to port %s", published("clickhouse"), want)
		}
		for _, name := range []string{"kafka", "clickhouse"} {
			if svc, _ := project.GetService(name); svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
				t.Errorf("%s has no healthcheck", name)
			}
		}
	})

	binaries := append(service.Services(), "imctl")
	for _, name := range append(service.Services(), "init") {
		t.Run(name, func(t *testing.T) {
			svc, err := project.GetService(name)
			if err != nil {
				t.Fatalf("service missing: %v", err)
			}
			if len(svc.Command) == 0 || !slices.Contains(binaries, svc.Command[0]) {
				t.Fatalf("command %v does not start a binary of cmd/", svc.Command)
			}
			binary := svc.Command[0]
			args := append([]string(nil), svc.Command[1:]...)
			flags := flagsOf(t, root, binary, args)
			for key, val := range svc.Environment {
				name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(key, service.EnvPrefix), "_", "-"))
				if !strings.HasPrefix(key, service.EnvPrefix) || !flags[name] {
					t.Errorf("environment %s: %s %s has no flag -%s", key, binary, strings.Join(args, " "), name)
				}
				if key == service.EnvName("kafka-brokers") && port(t, deref(val)) != "19092" {
					t.Errorf("%s = %q, want kafka's INTERNAL listener kafka:19092", key, deref(val))
				}
				if key == service.EnvName("clickhouse-addr") && port(t, deref(val)) != port(t, chstore.DefaultAddr) {
					t.Errorf("%s = %q, want ClickHouse's native port", key, deref(val))
				}
			}
			if name == "init" {
				checkDependsOnHealthy(t, svc, "kafka", "clickhouse")
				return
			}
			if dep, ok := svc.DependsOn["init"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("does not wait for init to complete: %v", svc.DependsOn)
			}
			admin := port(t, service.DefaultAdminAddr(name))
			env := deref(svc.Environment[service.EnvName("admin-addr")])
			if port(t, env) != admin {
				t.Errorf("%s = %q, want port %s (the binary's default)", service.EnvName("admin-addr"), env, admin)
			}
			if svc.HealthCheck == nil || !strings.Contains(strings.Join(svc.HealthCheck.Test, " "), ":"+admin+"/healthz") {
				t.Errorf("healthcheck %v does not probe :%s/healthz", svc.HealthCheck, admin)
			}
		})
	}
}

func checkDependsOnHealthy(t *testing.T, svc types.ServiceConfig, names ...string) {
	t.Helper()
	for _, n := range names {
		if dep, ok := svc.DependsOn[n]; !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("does not wait for %s to be healthy: %v", n, svc.DependsOn)
		}
	}
}

// flagsOf runs `go run ./cmd/<binary> args... -h` and collects the flag
// names the usage text lists.
func flagsOf(t *testing.T, root, binary string, args []string) map[string]bool {
	t.Helper()
	cmd := exec.Command("go", append(append([]string{"run", "./cmd/" + binary}, args...), "-h")...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // -h exits 0 or 2 depending on the flag package's mode
	flags := map[string]bool{}
	re := regexp.MustCompile(`^\s+-([a-z0-9-]+)`)
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			flags[m[1]] = true
		}
	}
	if len(flags) == 0 {
		t.Fatalf("%s -h listed no flags:\n%s", binary, out.String())
	}
	return flags
}

// port is the port of addr, or "" when addr has none.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return p
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestServicesScriptAgreesWithCode: scripts/services.sh waits for each
// service's /readyz on the admin address the binary defaults to.
func TestServicesScriptAgreesWithCode(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(root, "scripts", "services.sh"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(\w+)\) echo (\S+) ;;$`).FindAllStringSubmatch(string(script), -1) {
		got[m[1]] = m[2]
	}
	for _, s := range service.Services() {
		if want := service.DefaultAdminAddr(s); got[s] != want {
			t.Errorf("services.sh waits for %s on %q, the binary listens on %q", s, got[s], want)
		}
	}
	if len(got) != len(service.Services()) {
		t.Errorf("services.sh knows %d admin addresses %v, want one per service %v", len(got), got, service.Services())
	}
}

package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seqchat/seqchat/pipeline/gateway"
)

// TestDemoPageInTwoBrowsers drives the demo page in two tabs of headless
// Chromium (Debian's chromium package): alice creates a group, bob joins,
// both send; both pages must show the same entries in the same order.
func TestDemoPageInTwoBrowsers(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("web", func(c *gateway.Config) { c.Demo = true })
	base := "http://" + p.gateways["web"].addr
	conv := "g:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))

	ctx := startBrowser(t)
	alice, _ := chromedp.NewContext(ctx)
	bob, _ := chromedp.NewContext(ctx)

	open := func(tab context.Context, user string, wantSeq int) {
		t.Helper()
		if err := do(tab, chromedp.Navigate(fmt.Sprintf("%s/?user=%s&conv=%s", base, user, conv)),
			chromedp.WaitVisible(fmt.Sprintf(`#log li[data-seq="%d"]`, wantSeq))); err != nil {
			t.Fatalf("%s's page: %v", user, err)
		}
	}
	open(alice, "alice", 1) // creates the group: seq 1
	open(bob, "bob", 2)     // joins: seq 2
	say := func(tab context.Context, text string) {
		t.Helper()
		if err := do(tab, chromedp.SendKeys("#text", text), chromedp.Click("#send")); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		say(alice, fmt.Sprintf("alice %d", i))
		say(bob, fmt.Sprintf("bob %d", i))
	}
	shown := func(tab context.Context, n int) []string {
		t.Helper()
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](fmt.Sprintf(
			`document.querySelectorAll("#log li[data-seq]").length >= %d && !document.querySelector("#log li.pending")`, n))); err != nil {
			t.Fatal(err)
		}
		texts, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#log li[data-seq]")].map(li => li.textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		return texts
	}
	a, b := shown(alice, 8), shown(bob, 7)
	if len(a) != 8 || len(b) != 7 {
		t.Fatalf("alice shows %d entries (want 8: created, joined, 6 messages), bob %d (want 7: from his join)\nalice %q\nbob   %q", len(a), len(b), a, b)
	}
	if fmt.Sprint(a[1:]) != fmt.Sprint(b) {
		t.Fatalf("the pages disagree:\nalice %q\nbob   %q", a[1:], b)
	}
	for _, want := range []string{"alice 1", "alice 3", "bob 1", "bob 3"} {
		if !strings.Contains(strings.Join(b, "|"), want) {
			t.Fatalf("%q is missing from %q", want, b)
		}
	}
}

// startBrowser starts headless Chromium (Debian's) for the test and
// returns a context that opens tabs in it, bounded to two minutes.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	// The first run starts the browser; tabs open in it.
	if err := do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("chromium does not start: %v", err)
	}
	ctx, cancel := context.WithTimeout(browser, 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// do runs browser actions one after another.
func do(tab context.Context, actions ...chromedp.Action[chromedp.Void]) error {
	for _, a := range actions {
		if _, err := chromedp.Run(tab, a); err != nil {
			return err
		}
	}
	return nil
}

package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seqchat/seqchat/pipeline/gateway"
)

// TestDemoPageInTwoBrowsers drives the demo page (on the SDK) in headless
// Chromium (Debian's chromium package) against the real pipeline: alice
// creates a group, bob joins, both send, and both pages must show the same
// entries in the same order, each marking its own; a refused kick shows
// as failed with its code; a dm is started by user id; a message in a
// conversation not open counts as unread, and once read there the sender
// sees it marked read (a read receipt); a reload keeps the list and the
// messages; sends made while the connection is down show as pending and
// are reconciled with their seq once it is back; and the side-by-side view
// resumes a dropped device with nothing missing or repeated.
// With SEQCHAT_DEMO_SCREENSHOTS=<dir> it also saves screenshots there.
func TestDemoPageInTwoBrowsers(t *testing.T) {
	p := startPipeline(t)
	p.startGateway("web", func(c *gateway.Config) { c.Demo = true })
	base := "http://" + p.gateways["web"].addr
	// Each run has topics, tables and a browser profile of its own, so
	// plain names do.
	conv := "g:team"

	ctx := startBrowser(t)
	alice, _ := chromedp.NewContext(ctx)
	bob, _ := chromedp.NewContext(ctx)
	run := func(tab context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := do(tab, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait := func(tab context.Context, what, js string) {
		t.Helper()
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](js)); err != nil {
			page, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("panes").innerText`))
			t.Fatalf("waiting for %s: %v\nthe page shows:\n%s", what, err, page)
		}
	}
	eval := func(tab context.Context, js string) []string {
		t.Helper()
		out, err := chromedp.Run(tab, chromedp.Evaluate[[]string](js))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	pane := func(user string) string { return fmt.Sprintf(`section.pane[data-user=%q]`, user) }
	say := func(tab context.Context, user, text string) {
		t.Helper()
		run(tab, user+" sends", chromedp.SendKeys(pane(user)+" .compose input", text), chromedp.Click(pane(user)+" .compose button"))
	}
	// shown waits for n entries and no pending send, then lists them as "seq who text".
	shown := func(tab context.Context, user string, n int) []string {
		t.Helper()
		wait(tab, fmt.Sprintf("%d entries at %s", n, user), fmt.Sprintf(
			`document.querySelectorAll('%[1]s .log li[data-seq]').length >= %[2]d && !document.querySelector('%[1]s .log li.pending')`, pane(user), n))
		return eval(tab, fmt.Sprintf(`[...document.querySelectorAll('%s .log li[data-seq]')].map(li => li.dataset.seq + " " + li.querySelector(".who").textContent + " " + li.querySelector(".text").textContent)`, pane(user)))
	}

	run(alice, "alice's page", chromedp.Navigate(fmt.Sprintf("%s/?user=alice&conv=%s", base, conv)))
	shown(alice, "alice", 1) // she creates the group: seq 1
	run(bob, "bob's page", chromedp.Navigate(fmt.Sprintf("%s/?user=bob&conv=%s", base, conv)))
	shown(bob, "bob", 1) // he joins: seq 2, the first he sees
	for i := 1; i <= 3; i++ {
		say(alice, "alice", fmt.Sprintf("alice %d", i))
		say(bob, "bob", fmt.Sprintf("bob %d", i))
	}
	a, b := shown(alice, "alice", 8), shown(bob, "bob", 7)
	if len(a) != 8 || len(b) != 7 {
		t.Fatalf("alice shows %d entries (want 8: created, joined, 6 messages), bob %d (want 7: from his join)\nalice %q\nbob   %q", len(a), len(b), a, b)
	}
	if fmt.Sprint(a[1:]) != fmt.Sprint(b) {
		t.Fatalf("the pages disagree:\nalice %q\nbob   %q", a[1:], b)
	}
	for i, e := range a {
		if !strings.HasPrefix(e, fmt.Sprintf("%d ", i+1)) {
			t.Fatalf("alice's entry %d is %q: want seqs 1..8 in order", i, e)
		}
	}
	for _, want := range []string{"alice 1", "alice 3", "bob 1", "bob 3"} {
		if !strings.Contains(strings.Join(b, "|"), want) {
			t.Fatalf("%q is missing from %q", want, b)
		}
	}
	own := eval(alice, `[...document.querySelectorAll('.log li.own[data-seq]')].map(li => li.querySelector(".who").textContent)`)
	if len(own) != 4 || strings.Join(own, ",") != "alice,alice,alice,alice" {
		t.Fatalf("alice's own entries marked: %q, want her 4 (created and 3 messages)", own)
	}

	// A refused kick shows in place as failed, with its code.
	run(alice, "kick", chromedp.SendKeys(pane("alice")+" .kick input", "nobody"), chromedp.Click(pane("alice")+` .kick button[name=kick]`))
	wait(alice, "the failed kick", `[...document.querySelectorAll('.log li.failed')].some(li => li.textContent.includes("not_member"))`)

	// bob opens a dm with alice; alice writes in the group: one unread there.
	run(bob, "bob's dm", chromedp.SendKeys(pane("bob")+" .new-dm input", "alice"), chromedp.Click(pane("bob")+" .new-dm button"))
	say(bob, "bob", "hi alice")
	shown(bob, "bob", 1)
	say(alice, "alice", "unread for bob")
	wait(bob, "an unread count", fmt.Sprintf(`document.querySelector('%s .convs li[data-conv=%q] .unread').textContent === "1"`, pane("bob"), conv))
	wait(alice, "bob's dm in alice's list", `document.querySelector('.convs li[data-conv="dm:alice:bob"] .unread')?.textContent === "1"`)
	screenshot(t, alice, "demo-group.png")
	// alice reads it: bob's page shows his message read.
	run(alice, "alice opens the dm", chromedp.Click(`.convs li[data-conv="dm:alice:bob"]`))
	wait(bob, "the read mark", fmt.Sprintf(`document.querySelector('%s .log li.own[data-seq="1"] .mark.read')?.textContent === "read"`, pane("bob")))
	screenshot(t, bob, "demo-read.png")

	// A reload keeps the conversations and what was shown.
	run(alice, "alice's reload", chromedp.Navigate(base+"/"))
	wait(alice, "alice's list after the reload", `document.querySelectorAll('.convs li').length === 2 && document.querySelectorAll('.log li[data-seq]').length > 0`)

	// Sends made while the connection is down wait as pending, then get their seqs.
	d, e := "carol", "dave"
	pair, _ := chromedp.NewContext(ctx)
	run(pair, "the pair view", chromedp.Navigate(fmt.Sprintf("%s/?pair=%s,%s&conv=dm:%s:%s", base, d, e, d, e)))
	wait(pair, "both panes online", `[...document.querySelectorAll('.state')].every(s => s.dataset.state === "open")`)
	say(pair, d, "one")
	shown(pair, e, 1)
	run(pair, "offline", chromedp.Click(pane(e)+" .offline"))
	wait(pair, e+" offline", fmt.Sprintf(`document.querySelector('%s .state').dataset.state !== "open"`, pane(e)))
	say(pair, e, "while away 1")
	say(pair, e, "while away 2")
	wait(pair, "two pending sends", fmt.Sprintf(`document.querySelectorAll('%s .log li.pending').length === 2`, pane(e)))
	screenshot(t, pair, "demo-pending.png")
	run(pair, "online", chromedp.Click(pane(e)+" .offline"))
	got := shown(pair, e, 3)
	if len(got) != 3 || !strings.HasSuffix(got[1], "while away 1") || !strings.HasSuffix(got[2], "while away 2") {
		t.Fatalf("%s shows %q after reconnecting: want one, while away 1, while away 2 at seqs 1..3", e, got)
	}
	// A dropped connection resumes: what came meanwhile arrives once, in order.
	run(pair, "drop", chromedp.Click(pane(e)+" .drop"))
	say(pair, d, "after")
	if got := shown(pair, d, 4); len(got) != 4 || !strings.HasPrefix(got[3], "4 ") {
		t.Fatalf("%s shows %q: want 4 entries, seqs 1..4", d, got)
	}
	if got := shown(pair, e, 4); len(got) != 4 || !strings.HasSuffix(got[3], "after") {
		t.Fatalf("%s shows %q after its connection dropped: want 4 entries ending with after", e, got)
	}
	screenshot(t, pair, "demo-pair.png")
}

// screenshot saves the tab's page as name under $SEQCHAT_DEMO_SCREENSHOTS
// (the pictures in docs/), when set.
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SEQCHAT_DEMO_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startBrowser starts headless Chromium (Debian's) for the test and
// returns a context that opens tabs in it, bounded to two minutes.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.WindowSize(1400, 900),
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

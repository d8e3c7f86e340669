package worker

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// windowNames are the Go names in the send path that say "window": each means the customer
// service window, and only it (a sample of outcomes, a period of seconds or a time of day
// has a name of its own).
var windowNames = map[string]bool{
	"CodeWindowClosed": true, "InWindow": true, "OpenWindow": true, "OutsideWindow": true,
	"ReadWindow": true, "SentInWindow": true, "SetWindowMargin": true, "SkipWindowClosed": true,
	"WindowClosed": true, "WindowMargin": true, "WindowPolicy": true, "WindowRef": true, "Windows": true,
	"gateWindow": true, "inWindow": true, "servicewindow": true, "windowClosedAnswer": true,
	"windows": true, "windowNames": true, "WindowBound": true, "TestWindowIsTheServiceWindow": true, "openWindow": true,
	"TestDailyTierSkipsOpenWindow": true, "TestDailyTierWindowCloses": true, "TestInWindowWithoutTier": true,
	"TestTierCountsAClosedWindowAgain": true, "TestTierSkipsOpenWindows": true, "TestTierWindowRealRedis": true,
	"TestTierWindowRefundKeepsEarlierRoom": true, "TestTierWindowsWithRateLimitsAndUsage": true,
	"TestWindowMarginAtTheGate": true, "TestWindowWithoutTier": true,
	"TestPausedSessionRunHoldsAClosedWindow": true, "TestCancelledSessionRunSkipsAClosedWindowCancelled": true,
	"TestPausedFollowupRunHoldsAClosedWindow": true, "WindowRefused": true, "WindowRefusedFallback": true, "FallbackWindowClosed": true, "EventWindowRefused": true, "TestRunShowCountsConnectlyWindowRefusals": true,
	"outsideWindowPeople": true, "WindowOpen": true, "TestAdversarialTierCountsAWindowClosingBeforeTheSlot": true,
	"TestAdversarialWindowRefusalFormsSendOneFallback": true,
	"WindowAnswer": true, "WindowAnswerCodes": true, "WindowAnswerOutsideWindow": true, "WindowAnswerNoConversation": true,
	"WindowAnswerDeadline504": true, "WindowAnswerPrecondition": true, "ClearWindows": true,
}

// TestWindowIsTheServiceWindow: "window" names one idea in the worker, the limits and the
// ledger, the customer service window. A new name with "window" in it is either about that
// window (add it to windowNames) or wants a word of its own.
func TestWindowIsTheServiceWindow(t *testing.T) {
	fs := token.NewFileSet()
	for _, dir := range []string{".", "../internal/limits", "../internal/ledger"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			af, err := parser.ParseFile(fs, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(af, func(n ast.Node) bool {
				if id, ok := n.(*ast.Ident); ok && strings.Contains(strings.ToLower(id.Name), "window") && !windowNames[id.Name] {
					t.Errorf("%s: %s: say what it is (a sample, a period, send hours) or, for the customer service window, list it in windowNames",
						fs.Position(id.Pos()), id.Name)
				}
				return true
			})
		}
	}
}

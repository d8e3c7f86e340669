package fakeconnectly

import "testing"

// StartForTest is a fake of cfg serving on a free port of 127.0.0.1 for tb, closed when tb
// ends, and its base URL: what a test of Herald's side talks to.
func StartForTest(tb testing.TB, cfg Config) (*Server, string) {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, base
}

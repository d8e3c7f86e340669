package lifecycle_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heraldmsg/herald/internal/lifecycle"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder notes every call of the components it builds, in order.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *recorder) comp(name string, startErr error) lifecycle.Component {
	return lifecycle.Component{
		Name:    name,
		Start:   func() error { r.note("start " + name); return startErr },
		Quiesce: func() { r.note("quiesce " + name) },
		Stop:    func() error { r.note("stop " + name); return nil },
	}
}

func TestGroup(t *testing.T) {
	t.Parallel()

	t.Run("StartsInOrderStopsInReverse", func(t *testing.T) {
		t.Parallel()
		r := &recorder{}
		g := lifecycle.New(r.comp("redis", nil))
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		g.Add(r.comp("server", nil), r.comp("reclaimer", nil))
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		if err := g.Stop(); err != nil {
			t.Fatal(err)
		}
		want := []string{"start redis", "start server", "start reclaimer",
			"quiesce reclaimer", "quiesce server", "quiesce redis",
			"stop reclaimer", "stop server", "stop redis"}
		if got := r.got(); !slices.Equal(got, want) {
			t.Fatalf("calls (-want +got):\n-%q\n+%q", want, got)
		}
	})

	t.Run("FailedStartStopsWhatStarted", func(t *testing.T) {
		t.Parallel()
		r := &recorder{}
		boom := errors.New("boom")
		g := lifecycle.New(r.comp("a", nil), r.comp("b", nil), r.comp("c", boom), r.comp("d", nil))
		err := g.Start()
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "start c") {
			t.Fatalf("Start = %v, want an error naming c and wrapping boom", err)
		}
		want := []string{"start a", "start b", "start c", "quiesce b", "quiesce a", "stop b", "stop a"}
		if got := r.got(); !slices.Equal(got, want) {
			t.Fatalf("calls (-want +got):\n-%q\n+%q", want, got)
		}
		// A deferred Stop after the failed start does nothing more.
		if err := g.Stop(); err != nil {
			t.Fatal(err)
		}
		if got := r.got(); !slices.Equal(got, want) {
			t.Fatalf("Stop after a failed start called %q", got[len(want):])
		}
	})

	t.Run("StopIsIdempotent", func(t *testing.T) {
		t.Parallel()
		r := &recorder{}
		closeErr := errors.New("close failed")
		g := lifecycle.New(r.comp("a", nil), lifecycle.Component{Name: "b", Stop: func() error { r.note("stop b"); return closeErr }})
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Go(func() { errs[i] = g.Stop() })
		}
		wg.Wait()
		for _, err := range errs {
			if !errors.Is(err, closeErr) {
				t.Fatalf("Stop = %v, want the first stop's error every time", err)
			}
		}
		want := []string{"start a", "quiesce a", "stop b", "stop a"}
		if got := r.got(); !slices.Equal(got, want) {
			t.Fatalf("calls (-want +got):\n-%q\n+%q", want, got)
		}
		if err := g.Start(); err == nil {
			t.Fatal("Start after Stop succeeded")
		}
		defer func() {
			if recover() == nil {
				t.Fatal("Add after Stop did not panic")
			}
		}()
		g.Add(r.comp("late", nil))
	})

	t.Run("RunStopsWhenTheContextEnds", func(t *testing.T) {
		t.Parallel()
		r := &recorder{}
		g := lifecycle.New(r.comp("a", nil))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		waitFor(t, func() bool { return len(r.got()) == 1 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := r.got(); !slices.Equal(got, []string{"start a", "quiesce a", "stop a"}) {
			t.Fatalf("calls %q", got)
		}
	})

	t.Run("RunReturnsAFailure", func(t *testing.T) {
		t.Parallel()
		r := &recorder{}
		g := lifecycle.New(r.comp("a", nil))
		lost := errors.New("listener lost")
		g.Add(lifecycle.Component{Name: "b", Start: func() error { go g.Fail(lost); return nil }})
		g.Add(lifecycle.Component{Name: "c", Start: func() error { go g.Fail(errors.New("second")); return nil }})
		err := g.Run(context.Background())
		if err == nil || (!errors.Is(err, lost) && !strings.Contains(err.Error(), "second")) {
			t.Fatalf("Run = %v, want a reported failure", err)
		}
		if got := r.got(); !slices.Equal(got, []string{"start a", "quiesce a", "stop a"}) {
			t.Fatalf("calls %q", got)
		}
	})
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		ReadHeaderTimeout: time.Second}
	var addr string
	g := lifecycle.New(lifecycle.HTTP(lifecycle.Server{Name: "ops", Addr: "127.0.0.1:0", Server: srv, Grace: time.Second,
		Listening: func(a net.Addr) { addr = a.String() }, OnError: func(err error) { t.Errorf("serve: %v", err) }}))
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("body %q", body)
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get("http://" + addr); err == nil {
		t.Fatal("the server still answers after Stop")
	}

	t.Run("ListenFailureFailsTheStart", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		stopped := false
		g := lifecycle.New(lifecycle.Component{Name: "redis", Stop: func() error { stopped = true; return nil }},
			lifecycle.HTTP(lifecycle.Server{Name: "ops", Addr: ln.Addr().String(), Server: &http.Server{ReadHeaderTimeout: time.Second},
				Grace: time.Second}))
		if err := g.Start(); err == nil || !strings.Contains(err.Error(), "start ops") {
			t.Fatalf("Start on a taken address = %v", err)
		}
		if !stopped {
			t.Fatal("the component started before the failed one was not stopped")
		}
	})
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

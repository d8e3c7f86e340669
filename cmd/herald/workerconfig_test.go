package main

import (
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/limits"
	"github.com/heraldmsg/herald/internal/sendpolicy"
	"github.com/heraldmsg/herald/serve"
)

// Send tasks' options follow the config; keeping no place adds nothing to the timeout.
func TestSendTaskOptions(t *testing.T) {
	t.Parallel()
	o := sendTaskOptions(config.Default())
	want := sendpolicy.DefaultRequestTimeout + limits.DefaultMaxWait + sendpolicy.DefaultKeepPlaceFor + 30*time.Second
	if o.MaxRetry != sendpolicy.DefaultMaxAttempts+20 || o.Timeout != want || o.Retention != sendpolicy.Retention {
		t.Errorf("default options %+v, want timeout %v", o, want)
	}
}

// The commands' send task options and sender choice are the processes' (package serve): a
// run started by `campaign send` gets the tasks and the sender a scheduled one would.
func TestCommandsMatchServe(t *testing.T) {
	t.Parallel()
	off := config.Default()
	off.Retry.MaxAttempts = 2
	off.Retry.KeepPlaceFor = 0
	for _, c := range []config.Config{config.Default(), off} {
		if got, want := sendTaskOptions(c), serve.SendTaskOptions(c); got != want {
			t.Errorf("send task options %+v, serve's %+v", got, want)
		}
	}
	for _, c := range []config.Config{{}, {Senders: []config.Sender{{Number: "+14155550101"}}},
		{Senders: []config.Sender{{Number: "+14155550101"}, {Number: "+14155550102"}}}} {
		for _, s := range []string{"", "+14155550100"} {
			def := &campaigns.Definition{Sender: s, Path: "c.yaml"}
			got, gotErr := resolveSender(def, c)
			want, wantErr := serve.SenderOf(def, c)
			if got != want || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("sender %q, %d configured: %q, %v; serve's %q, %v", s, len(c.Senders), got, gotErr, want, wantErr)
			}
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/audit"
)

// A mistyped queue is refused, naming Herald's queues: asynq would pause a queue of any name,
// the command would say it was paused, and sending would go on. The short form of a queue's
// name is taken as the queue.
func TestQueuePauseRefusesUnknownQueue(t *testing.T) {
	t.Parallel()
	m, env := miniEnv(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	for _, verb := range []string{"pause", "resume"} {
		code, out, errOut := herald(t, env, "queue", verb, "promo", "--reason", "x")
		if code != exitError || out != "" || !strings.Contains(errOut, `queue "promo"`) ||
			!strings.Contains(errOut, "herald:authentication, herald:marketing, herald:utility") {
			t.Fatalf("queue %s promo: %d %q %q; want exit 1 naming the queues", verb, code, out, errOut)
		}
	}
	if es, err := audit.List(ctx, rdb, 10); err != nil || len(es) != 0 {
		t.Fatalf("audit log %+v, %v; want nothing kept for a refused queue", es, err)
	}
	if keys, err := rdb.Keys(ctx, "asynq:{*}:paused").Result(); err != nil || len(keys) != 0 {
		t.Fatalf("paused keys %v, %v; want none", keys, err)
	}

	code, out, errOut := herald(t, env, "queue", "pause", "marketing", "--reason", "x")
	if code != 0 || out != "queue herald:marketing paused\n" {
		t.Fatalf("queue pause marketing: %d %q %q", code, out, errOut)
	}
	if paused, err := rdb.Exists(ctx, "asynq:{herald:marketing}:paused").Result(); err != nil || paused != 1 {
		t.Fatalf("herald:marketing not paused: %d %v", paused, err)
	}
	code, out, errOut = herald(t, env, "queue", "resume", "marketing", "--json")
	var got queueActed
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got != (queueActed{Queue: "herald:marketing", Action: "resume", Paused: false}) {
		t.Fatalf("queue resume --json: %d %q %q", code, out, errOut)
	}
	if es, err := audit.List(ctx, rdb, 10); err != nil || len(es) != 2 || es[0].Target != "herald:marketing" || es[1].Target != "herald:marketing" {
		t.Fatalf("audit log %+v, %v; want the pause and resume of herald:marketing", es, err)
	}
}

// Every command that changes state prints its result as one JSON object with --json, with
// the same snake_case keys each time.
func TestWriteCommandsJSON(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	welcome := filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml")
	code, out, errOut := herald(t, env, "campaign", "send", "--json", welcome)
	var sent struct{ Run, Queue string }
	if code != 0 || json.Unmarshal([]byte(out), &sent) != nil {
		t.Fatalf("send: %d %s %s", code, out, errOut)
	}
	// decode prints the keys of one JSON object and checks they are the wanted ones.
	decode := func(args []string, want ...string) map[string]any {
		t.Helper()
		code, out, errOut := herald(t, env, append(args, "--json")...)
		var m map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
			t.Fatalf("%v: %d %q %q; want one JSON object", args, code, out, errOut)
		}
		for _, k := range want {
			if _, ok := m[k]; !ok {
				t.Errorf("%v: no key %q in %s", args, k, out)
			}
		}
		return m
	}
	m := decode([]string{"run", "pause", sent.Run, "--reason", "copy"}, "run", "action", "status")
	if m["run"] != sent.Run || m["action"] != "pause" || m["status"] != "paused" {
		t.Errorf("run pause: %v", m)
	}
	m = decode([]string{"run", "resume", sent.Run}, "run", "action", "status")
	if m["status"] != "running" {
		t.Errorf("run resume: %v", m)
	}
	m = decode([]string{"task", "archive", sent.Queue, "--all", "--state", "pending"}, "action", "queue", "state", "target", "tasks", "recipients_skipped")
	if m["action"] != "archive" || m["state"] != "pending" || m["tasks"] != float64(6) || m["recipients_skipped"] != float64(0) {
		t.Errorf("task archive --all: %v", m)
	}
	var archived []struct{ ID string }
	if code, out, errOut := herald(t, env, "task", "ls", sent.Queue, "--state", "archived", "--json"); code != 0 ||
		json.Unmarshal([]byte(out), &archived) != nil || len(archived) != 6 {
		t.Fatalf("task ls: %d %s %s", code, out, errOut)
	}
	m = decode([]string{"task", "delete", sent.Queue, archived[0].ID}, "action", "queue", "task", "target", "tasks", "recipients_skipped", "recipients_unknown")
	if m["task"] != archived[0].ID || m["tasks"] != float64(1) || m["recipients_skipped"] != float64(1) {
		t.Errorf("task delete: %v", m)
	}
	m = decode([]string{"run", "cancel", sent.Run}, "run", "action", "status", "detail")
	if m["status"] != "cancelled" || m["detail"] != "5 recipients skipped" {
		t.Errorf("run cancel: %v", m)
	}
	// The cancelled run's recipients are skipped already: the tasks go, no recipient changes.
	m = decode([]string{"task", "delete", sent.Queue, "--all", "--state", "archived"}, "tasks", "recipients_skipped")
	if m["tasks"] != float64(5) || m["recipients_skipped"] != float64(0) || m["target"] != sent.Queue+" (archived)" {
		t.Errorf("task delete --all: %v", m)
	}
	if code, _, errOut := herald(t, env, "campaign", "submit", welcome); code != 0 {
		t.Fatal(errOut)
	}
	m = decode([]string{"campaign", "rm", "welcome"}, "campaign", "removed")
	if m["campaign"] != "welcome" || m["removed"] != true {
		t.Errorf("campaign rm: %v", m)
	}
}

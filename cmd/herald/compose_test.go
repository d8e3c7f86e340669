package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComposeFile checks docker-compose.yml against the binary it runs (no Docker engine is
// needed): every Herald service's command is a real subcommand whose flags parse, secrets
// come only from the environment, Redis persists to a volume, and the staging profile wires
// the fake Connectly to the receiver.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Profiles    []string          `yaml:"profiles"`
			Volumes     []string          `yaml:"volumes"`
			Deploy      struct {
				Replicas int `yaml:"replicas"`
			} `yaml:"deploy"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"redis", "scheduler", "worker", "webhooks", "dashboard", "fake-connectly"} {
		if _, ok := f.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
	if r := f.Services["redis"]; !strings.Contains(strings.Join(r.Command, " "), "--appendonly yes") || len(r.Volumes) == 0 {
		t.Errorf("redis: want AOF on and a volume, got %v %v", r.Command, r.Volumes)
	}
	if n := f.Services["worker"].Deploy.Replicas; n != 2 {
		t.Errorf("worker replicas %d, want 2", n)
	}
	if p := f.Services["fake-connectly"].Profiles; !slices.Contains(p, "staging") {
		t.Errorf("fake-connectly profiles %v, want staging", p)
	}
	if c := strings.Join(f.Services["fake-connectly"].Command, " "); !strings.Contains(c, "--webhook-url http://webhooks:") {
		t.Errorf("fake-connectly does not call the receiver: %s", c)
	}
	for name, s := range f.Services {
		if name == "redis" {
			continue
		}
		// The command must run: the subcommand exists and its flags parse.
		args := append(append([]string{}, s.Command...), "--help")
		if code, _, errOut := herald(t, nil, args...); code != 0 {
			t.Errorf("service %s: herald %s: exit %d: %s", name, strings.Join(s.Command, " "), code, errOut)
		}
		for k, v := range s.Environment {
			if (strings.Contains(k, "KEY") || strings.Contains(k, "SECRET")) && v != "" && !strings.HasPrefix(v, "${") {
				t.Errorf("service %s: %s is written in the file; secrets come from the environment", name, k)
			}
		}
	}
}

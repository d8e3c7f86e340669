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
	// Campaign and audience files: runs re-read them while they are expanded, by any scheduler
	// or worker, so one mount holds them, the same in every service that reads them.
	var shared string
	for _, name := range []string{"scheduler", "worker", "dashboard"} {
		var mount string
		for _, v := range f.Services[name].Volumes {
			if _, target, _ := splitVolume(v); target == campaignsDir {
				mount = v
			}
		}
		switch {
		case mount == "":
			t.Errorf("service %s does not mount the campaign files at %s: %v", name, campaignsDir, f.Services[name].Volumes)
		case shared == "":
			shared = mount
		case mount != shared:
			t.Errorf("service %s mounts %q at %s, another service %q", name, mount, campaignsDir, shared)
		}
	}
	if shared != "" {
		source, _, mode := splitVolume(shared)
		if mode != "ro" {
			t.Errorf("campaign files mounted %q, want read-only", shared)
		}
		// The default host folder exists in the repository (the example campaigns).
		def := source
		if i := strings.Index(source, ":-"); strings.HasPrefix(source, "${") && i > 0 {
			def = strings.TrimSuffix(source[i+2:], "}")
		}
		if st, err := os.Stat(filepath.Join("..", "..", def)); err != nil || !st.IsDir() {
			t.Errorf("campaign files' host folder %q (default %q) is not a folder of the repository: %v", source, def, err)
		}
	}
	if !strings.Contains(string(raw), "campaigns.root") || !strings.Contains(string(raw), campaignsDir) {
		t.Errorf("docker-compose.yml does not say to set campaigns.root to %s", campaignsDir)
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

// campaignsDir is where the compose file mounts the campaign and audience files.
const campaignsDir = "/srv/herald/campaigns"

// splitVolume splits a compose short-syntax volume "SOURCE:TARGET[:MODE]"; SOURCE may be a
// "${VAR:-default}" interpolation, which holds a colon of its own.
func splitVolume(v string) (source, target, mode string) {
	rest := v
	if strings.HasPrefix(v, "${") {
		end := strings.Index(v, "}")
		if end < 0 {
			return v, "", ""
		}
		source, rest = v[:end+1], strings.TrimPrefix(v[end+1:], ":")
	} else {
		source, rest, _ = strings.Cut(v, ":")
	}
	target, mode, _ = strings.Cut(rest, ":")
	return source, target, mode
}

package defstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/defstore"
)

func setup(t *testing.T) (*defstore.Store, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	now := time.Date(2026, 3, 20, 9, 30, 0, 0, time.UTC)
	return defstore.New(rdb, func() time.Time { return now }), mr
}

func TestStoreVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := setup(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "spring.yaml")

	v, created, err := s.Submit(ctx, "spring", path, []byte("id: spring\n"))
	if err != nil || v != 1 || !created {
		t.Fatalf("first Submit = %d, %v, %v; want 1, true", v, created, err)
	}
	gen, err := s.Gen(ctx)
	if err != nil || gen != 1 {
		t.Fatalf("Gen = %d, %v; want 1", gen, err)
	}
	// The same text at the same path keeps its version; new text makes a new one.
	if v, created, err = s.Submit(ctx, "spring", path, []byte("id: spring\n")); err != nil || v != 1 || created {
		t.Fatalf("unchanged Submit = %d, %v, %v; want 1, false", v, created, err)
	}
	if v, created, err = s.Submit(ctx, "spring", path, []byte("id: spring\nrate: 5\n")); err != nil || v != 2 || !created {
		t.Fatalf("changed Submit = %d, %v, %v; want 2, true", v, created, err)
	}
	cur, err := s.Current(ctx, "spring")
	if err != nil || cur.Version != 2 || string(cur.YAML) != "id: spring\nrate: 5\n" || cur.Path != path || cur.SHA == "" {
		t.Fatalf("Current = %+v, %v", cur, err)
	}
	old, err := s.Version(ctx, "spring", 1)
	if err != nil || string(old.YAML) != "id: spring\n" {
		t.Fatalf("Version 1 = %+v, %v", old, err)
	}
	if _, err := s.Version(ctx, "spring", 3); !errors.Is(err, defstore.ErrNotSubmitted) {
		t.Fatalf("Version 3 = %v, want ErrNotSubmitted", err)
	}
	// A relative path is stored absolute.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, filepath.Join(dir, "other.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Submit(ctx, "other", rel, []byte("id: other\n")); err != nil {
		t.Fatal(err)
	}
	if o, err := s.Current(ctx, "other"); err != nil || o.Path != filepath.Join(dir, "other.yaml") {
		t.Fatalf("other = %+v, %v; want its absolute path", o, err)
	}
	active, err := s.Active(ctx)
	if err != nil || len(active) != 2 || active[0].ID != "other" || active[1].ID != "spring" {
		t.Fatalf("Active = %+v, %v", active, err)
	}

	// Removed: no current version, but its versions stay readable for its runs.
	if ok, err := s.Remove(ctx, "spring"); err != nil || !ok {
		t.Fatalf("Remove = %v, %v", ok, err)
	}
	if _, err := s.Current(ctx, "spring"); !errors.Is(err, defstore.ErrNotSubmitted) {
		t.Fatalf("Current after Remove = %v, want ErrNotSubmitted", err)
	}
	if _, err := s.Version(ctx, "spring", 2); err != nil {
		t.Fatalf("Version 2 after Remove: %v", err)
	}
	if ok, _ := s.Remove(ctx, "spring"); ok {
		t.Fatal("second Remove reported the campaign submitted")
	}
	// Submitted again unchanged, it is back at its version, and the submit says so.
	sub, err := s.SubmitFile(ctx, "spring", path, []byte("id: spring\nrate: 5\n"))
	if err != nil || sub != (defstore.Submission{Version: 2, Restored: true}) {
		t.Fatalf("Submit after Remove = %+v, %v; want version 2 restored", sub, err)
	}
	if cur, err := s.Current(ctx, "spring"); err != nil || cur.Version != 2 {
		t.Fatalf("Current after the submit = %+v, %v; want version 2", cur, err)
	}
	if sub, err = s.SubmitFile(ctx, "spring", path, []byte("id: spring\nrate: 5\n")); err != nil || sub.Restored {
		t.Fatalf("Submit once more = %+v, %v; want it not restored", sub, err)
	}
}

func TestStoreLastFire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := setup(t)
	if _, ok, err := s.LastFire(ctx, "c"); ok || err != nil {
		t.Fatalf("LastFire of a new campaign = %v, %v", ok, err)
	}
	t1 := time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{t1, t1.Add(-time.Hour)} { // never moves back
		if err := s.RecordFire(ctx, "c", at); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok, err := s.LastFire(ctx, "c"); err != nil || !ok || !got.Equal(t1) {
		t.Fatalf("LastFire = %v, %v, %v; want %v", got, ok, err, t1)
	}
}

// TestStoreRecordFireAfterRemove: a tick handled while the campaign is being removed (a
// scheduler firing it as rm runs) records nothing, so a later submit starts afresh rather than
// catching up from that tick.
func TestStoreRecordFireAfterRemove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := setup(t)
	if _, _, err := s.Submit(ctx, "c", filepath.Join(t.TempDir(), "c.yaml"), []byte("id: c\n")); err != nil {
		t.Fatal(err)
	}
	t1 := time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC)
	if err := s.RecordFire(ctx, "c", t1); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Remove(ctx, "c"); err != nil || !ok {
		t.Fatalf("Remove = %v, %v", ok, err)
	}
	if err := s.RecordFire(ctx, "c", t1.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s.LastFire(ctx, "c"); ok || err != nil {
		t.Fatalf("LastFire after Remove and a late RecordFire = %v, %v, %v; want none", got, ok, err)
	}
}

// TestStoreErrorsWrapTheCause closes Redis under the store: the error says what failed and
// keeps the cause.
func TestStoreErrorsWrapTheCause(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, mr := setup(t)
	mr.SetError("LOADING Redis is loading the dataset in memory")
	_, err := s.Current(ctx, "c")
	var rerr redis.Error
	if err == nil || !errors.As(err, &rerr) {
		t.Fatalf("Current with Redis failing = %v, want a wrapped redis.Error", err)
	}
}

// A campaign file kept for a run reads back as it was kept, by its content hash, whatever
// becomes of the file; the same text at the same path is kept once; a hash never kept is
// ErrNotKept. Kept files are not submitted campaigns: the scheduler never sees them.
func TestKeepFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, mr := setup(t)
	path := filepath.Join(t.TempDir(), "spring.yaml")
	sha, err := s.KeepFile(ctx, "spring", path, []byte("id: spring\n"))
	if err != nil || sha == "" {
		t.Fatalf("KeepFile = %q, %v", sha, err)
	}
	again, err := s.KeepFile(ctx, "spring", path, []byte("id: spring\n"))
	if err != nil || again != sha {
		t.Fatalf("second KeepFile = %q, %v; want %q", again, err, sha)
	}
	other, _ := s.KeepFile(ctx, "spring", path, []byte("id: spring\nsender: \"+14155550100\"\n"))
	if other == sha {
		t.Fatal("another text kept under the same hash")
	}
	f, err := s.File(ctx, "spring", sha)
	if err != nil || f.Path != path || string(f.YAML) != "id: spring\n" || f.SHA != sha || f.Version != 0 {
		t.Fatalf("File = %+v, %v", f, err)
	}
	if _, err := s.File(ctx, "spring", "nope"); !errors.Is(err, defstore.ErrNotKept) {
		t.Fatalf("File of no such hash = %v, want ErrNotKept", err)
	}
	if active, err := s.Active(ctx); err != nil || len(active) != 0 {
		t.Fatalf("Active = %v, %v; kept files are not submitted", active, err)
	}
	if n := len(mr.Keys()); n != 2 {
		t.Fatalf("%d keys, want the two kept texts: %v", n, mr.Keys())
	}
}

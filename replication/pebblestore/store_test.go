package pebblestore

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/replication"
	"github.com/pastrynet/pastry/replication/storetest"
)

func quiet(t testing.TB) Config {
	return Config{Logf: func(format string, args ...any) { t.Logf(format, args...) }}
}

func openT(t testing.TB, dir string, cfg Config) *Store {
	t.Helper()
	s, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T, o replication.Options) replication.Store {
			cfg := quiet(t)
			cfg.Options = o
			return openT(t, t.TempDir(), cfg)
		},
		Reopen: func(t *testing.T, s replication.Store) replication.Store {
			ps := s.(*Store)
			if err := ps.Close(); err != nil {
				t.Fatal(err)
			}
			cfg := quiet(t)
			cfg.Options, cfg.VerifySignatures = ps.opts, true
			return openT(t, ps.dir, cfg)
		},
		Ops: 600, // synced writes: a few ms each on a disk
	})
}

// records puts n signed records and returns them.
func records(t testing.TB, s replication.Store, n int) []*replication.Record {
	k := storetest.Key(t, 20)
	var rs []*replication.Record
	for i := range n {
		r := storetest.Mutable(t, k, fmt.Sprint(i), []byte(strings.Repeat("v", i)), 1, 0)
		if _, err := s.Put(storetest.Now, r); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

func checkAll(t testing.TB, s replication.Store, rs []*replication.Record) {
	t.Helper()
	for _, r := range rs {
		got, ok, err := s.Get(r.Key())
		if err != nil || !ok || !got.Equal(r) {
			t.Fatalf("%s after the crash: %v, %v", r, ok, err)
		}
	}
	if st := s.Stats(); st.Records != len(rs) {
		t.Fatalf("%d records after the crash, want %d", st.Records, len(rs))
	}
}

// TestPowerLoss: what Put acknowledged survives a crash that loses every
// write not synced (Pebble's crashable file system).
func TestPowerLoss(t *testing.T) {
	mem := vfs.NewCrashableMem()
	cfg := quiet(t)
	cfg.FS = mem
	s := openT(t, "/db", cfg)
	rs := records(t, s, 50)
	if _, err := s.Delete(rs[0].Key()); err != nil {
		t.Fatal(err)
	}
	rs = rs[1:]
	crashed := mem.CrashClone(vfs.CrashCloneCfg{}) // exactly what was synced
	_ = s.Close()
	cfg.FS = crashed
	s2 := openT(t, "/db", cfg)
	defer s2.Close()
	checkAll(t, s2, rs)
}

// TestPowerLossCanFail shows TestPowerLoss can fail: writes without sync
// are lost by the same crash.
func TestPowerLossCanFail(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, err := pebble.Open("/db", &pebble.Options{FS: mem, Logger: logger{t.Logf}})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Set([]byte("k"), []byte("v"), pebble.NoSync)
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	_ = db.Close()
	db2, err := pebble.Open("/db", &pebble.Options{FS: crashed, Logger: logger{t.Logf}})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if _, _, err := db2.Get([]byte("k")); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("an unsynced write survived the simulated crash (%v): the crash test proves nothing", err)
	}
}

// TestKill9: a process killed with SIGKILL while writing loses none of the
// records whose Put had returned.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("PASTRY_PEBBLESTORE_CHILD"); dir != "" {
		s, err := Open(dir, Config{})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		k := storetest.Key(t, 21)
		for i := 0; ; i++ {
			r := storetest.Mutable(t, k, fmt.Sprint(i), make([]byte, 1000), 1, 0)
			if _, err := s.Put(storetest.Now, r); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println("stored", i)
		}
	}
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), "PASTRY_PEBBLESTORE_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() && acked < 200 {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "stored" {
			acked, _ = strconv.Atoi(f[1])
		} else if len(f) > 0 && f[0] == "error" {
			t.Fatal(sc.Text())
		}
	}
	_ = cmd.Process.Kill() // SIGKILL, mid-write
	_ = cmd.Wait()
	if acked < 200 {
		t.Fatalf("the child acknowledged %d records", acked+1)
	}
	s := openT(t, dir, quiet(t))
	defer s.Close()
	k := storetest.Key(t, 21)
	for i := 0; i <= acked; i++ {
		r := storetest.Mutable(t, k, fmt.Sprint(i), make([]byte, 1000), 1, 0)
		if got, ok, err := s.Get(r.Key()); err != nil || !ok || !got.Equal(r) {
			t.Fatalf("record %d of %d acknowledged is missing after kill -9: %v, %v", i, acked+1, ok, err)
		}
	}
	t.Logf("%d acknowledged records, %d held after kill -9", acked+1, s.Stats().Records)
}

// dirSum hashes every file under dir, to show a refused open changed
// nothing.
func dirSum(t *testing.T, dir string) [32]byte {
	h := sha256.New()
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "LOCK") {
			return err
		}
		b, err := os.ReadFile(p)
		fmt.Fprintf(h, "%s %d\n", p, len(b))
		h.Write(b)
		return err
	})
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// refused checks that opening dir fails with an error wrapping want (nil:
// any) that tells what to do, and changes no file.
func refused(t *testing.T, dir string, want error, says string) {
	t.Helper()
	before := dirSum(t, dir)
	cfg := quiet(t)
	cfg.VerifySignatures = true
	s, err := Open(dir, cfg)
	if err == nil {
		_ = s.Close()
		t.Fatal("a corrupt store opened")
	}
	if want != nil && !errors.Is(err, want) || !strings.Contains(err.Error(), says) {
		t.Fatalf("Open: %v; want %v saying %q", err, want, says)
	}
	if dirSum(t, dir) != before {
		t.Fatal("the refused open changed the store's files")
	}
	t.Logf("refused: %v", err)
}

// tamper writes raw pairs into a closed store's database.
func tamper(t *testing.T, dir string, f func(db *pebble.DB)) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: logger{t.Logf}})
	if err != nil {
		t.Fatal(err)
	}
	f(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptAtOpen: every kind of damage makes Open refuse with a
// message that says what to do, and leaves the files as they were.
func TestCorruptAtOpen(t *testing.T) {
	const todo = "move it aside"
	newStore := func(t *testing.T) (string, []*replication.Record) {
		dir := t.TempDir()
		s := openT(t, dir, quiet(t))
		rs := records(t, s, 20)
		_ = s.Close()
		return dir, rs
	}
	set := func(k, v []byte) func(*pebble.DB) {
		return func(db *pebble.DB) { _ = db.Set(k, v, pebble.Sync) }
	}
	t.Run("flipped bytes in a table", func(t *testing.T) {
		dir := t.TempDir()
		s := openT(t, dir, quiet(t))
		records(t, s, 200)
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
		if len(ssts) == 0 {
			t.Fatal("no table written")
		}
		b, _ := os.ReadFile(ssts[0])
		for i := len(b) / 4; i < len(b)/4+16; i++ {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(ssts[0], b, 0o600); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, replication.ErrCorrupt, todo)
	})
	t.Run("record under another key", func(t *testing.T) {
		dir, rs := newStore(t)
		enc, _ := rs[1].Marshal()
		tamper(t, dir, set(dbKey(prefixRecord, rs[0].Key()), enc))
		refused(t, dir, replication.ErrCorrupt, todo)
	})
	t.Run("record bytes", func(t *testing.T) {
		dir, rs := newStore(t)
		tamper(t, dir, set(dbKey(prefixRecord, rs[3].Key()), []byte("garbage")))
		refused(t, dir, replication.ErrCorrupt, todo)
	})
	t.Run("forged signature", func(t *testing.T) {
		dir, rs := newStore(t)
		r := rs[5].Clone()
		r.Signature[0] ^= 1
		enc, _ := r.Marshal()
		e, _ := r.Entry()
		tamper(t, dir, func(db *pebble.DB) {
			_ = db.Set(dbKey(prefixRecord, r.Key()), enc, pebble.Sync)
			_ = db.Set(dbKey(prefixEntry, r.Key()), encodeEntry(e), pebble.Sync)
		})
		refused(t, dir, replication.ErrCorrupt, todo)
	})
	t.Run("entry mismatch", func(t *testing.T) {
		dir, rs := newStore(t)
		e, _ := rs[2].Entry()
		e.Version++
		tamper(t, dir, set(dbKey(prefixEntry, rs[2].Key()), encodeEntry(e)))
		refused(t, dir, replication.ErrCorrupt, todo)
	})
	t.Run("record without entry", func(t *testing.T) {
		dir, rs := newStore(t)
		tamper(t, dir, func(db *pebble.DB) { _ = db.Delete(dbKey(prefixEntry, rs[4].Key()), pebble.Sync) })
		refused(t, dir, replication.ErrCorrupt, todo)
	})
	t.Run("entry without record", func(t *testing.T) {
		dir, rs := newStore(t)
		tamper(t, dir, func(db *pebble.DB) { _ = db.Delete(dbKey(prefixRecord, rs[4].Key()), pebble.Sync) })
		refused(t, dir, replication.ErrCorrupt, todo)
	})
	t.Run("unknown key", func(t *testing.T) {
		dir, _ := newStore(t)
		tamper(t, dir, set([]byte("zzz"), []byte("?")))
		refused(t, dir, replication.ErrCorrupt, todo)
	})
	t.Run("format", func(t *testing.T) {
		dir, _ := newStore(t)
		tamper(t, dir, set(formatKey, []byte("pastry replication store v9")))
		refused(t, dir, replication.ErrCorrupt, todo)
	})
	t.Run("missing manifest", func(t *testing.T) {
		dir, _ := newStore(t)
		ms, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
		for _, m := range ms {
			_ = os.Remove(m)
		}
		refused(t, dir, nil, todo)
	})
	t.Run("not a store", func(t *testing.T) {
		dir := t.TempDir()
		_ = os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600)
		refused(t, dir, nil, "holds no store")
	})
	t.Run("limits lowered", func(t *testing.T) {
		dir, _ := newStore(t)
		cfg := quiet(t)
		cfg.Options.Limits.MaxValue = 5
		_, err := Open(dir, cfg)
		if err == nil || !strings.Contains(err.Error(), "raise them back") {
			t.Fatalf("Open with lower limits: %v", err)
		}
	})
}

// TestOpenCounts: the accounts rebuilt at open equal those kept live.
func TestOpenCounts(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, quiet(t))
	records(t, s, 30)
	_, _ = s.Put(storetest.Now, replication.NewImmutable([]byte("x")))
	want := s.Stats()
	_ = s.Close()
	s = openT(t, dir, quiet(t))
	defer s.Close()
	got := s.Stats()
	if got.Records != want.Records || got.Bytes != want.Bytes || got.Immutable != 1 || len(got.Owners) != 1 {
		t.Fatalf("Stats after open %+v, before %+v", got, want)
	}
	var keys []id.ID
	_ = s.Entries(id.ID{}, replication.MaxID, func(e replication.Entry) bool { keys = append(keys, e.Key); return true })
	if !slices.IsSortedFunc(keys, id.ID.Cmp) || len(keys) != 31 {
		t.Fatalf("%d entries, sorted %v", len(keys), slices.IsSortedFunc(keys, id.ID.Cmp))
	}
}

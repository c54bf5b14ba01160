// Package pebblestore is replication's Store on disk, in a Pebble
// database (github.com/cockroachdb/pebble/v2) in the daemon's data
// directory.
//
// Layout: one key-value pair per record and one per entry, so that
// ranges, summaries and collection read entries only, never values:
//
//	"\x00format"      -> Format (written when the store is created)
//	'm' ‖ key (16)     -> the record's entry (entryLen bytes, below)
//	'r' ‖ key (16)     -> the record's canonical encoding
//
// Keys are big-endian, so Pebble's byte order is the ring's key order.
//
// Sync policy: every change (Put, Delete, Collect) is one Pebble batch
// holding both pairs, committed with Sync: the write-ahead log is
// fsynced before the call returns, so a receipt signed after Put names a
// record that survives a crash or power loss. Writes are serialised by
// the store; Pebble groups the fsyncs of batches committed at the same
// time, which a PutMany could use later.
//
// Open reads every entry and record back before it serves: each record
// must decode, derive the key it is stored under and match its entry
// (and, with Config.VerifySignatures, carry a valid signature). Any
// mismatch, Pebble corruption (its blocks and log records are
// checksummed) or unknown key makes Open fail with an error wrapping
// replication.ErrCorrupt that says what to do; the store is not changed
// and no record is dropped.
package pebblestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/replication"
)

// Format is the value of the store's format key.
const Format = "pastry replication store v1"

var formatKey = []byte("\x00format")

const (
	prefixEntry  = 'm'
	prefixRecord = 'r'
)

// Config configures a store.
type Config struct {
	// Options are the store's limits (replication.Options).
	Options replication.Options
	// VerifySignatures makes Open verify every mutable record's
	// signature too (about 50 us a record), not only its encoding, key
	// and entry.
	VerifySignatures bool
	// FS is the file system; nil means the operating system's. Tests pass
	// vfs.NewCrashableMem() to simulate power loss.
	FS vfs.FS
	// Logf receives Pebble's error messages; nil means the standard
	// logger. Pebble's informational messages are dropped.
	Logf func(format string, args ...any)
}

// Store is a replication.Store in a Pebble database.
type Store struct {
	mu   sync.RWMutex
	dir  string
	opts replication.Options
	db   *pebble.DB
	acct *replication.Accounts
}

var _ replication.Store = (*Store)(nil)

// logger drops Pebble's informational messages.
type logger struct{ logf func(string, ...any) }

func (l logger) Infof(string, ...any)              {}
func (l logger) Errorf(format string, args ...any) { l.logf("pebble: "+format, args...) }
func (l logger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }

// whatToDo ends every refusal to open.
func whatToDo(dir string) string {
	return fmt.Sprintf("nothing in %s was changed or dropped. Restore it from a backup, "+
		"or move it aside (mv %s %s.bad) and start with an empty store: "+
		"this node's replicas are then repaired from the other replicas", dir, dir, dir)
}

// Open opens the store in dir, creating it if dir is missing or empty.
// It refuses a directory that holds something else, and a store that is
// corrupt (replication.ErrCorrupt).
func Open(dir string, cfg Config) (*Store, error) {
	if err := cfg.Options.Check(); err != nil {
		return nil, err
	}
	fs := cfg.FS
	if fs == nil {
		fs = vfs.Default
	}
	logf := cfg.Logf
	if logf == nil {
		logf = pebble.DefaultLogger.Errorf
	}
	names, err := fs.List(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("replication: store %s: %w", dir, err)
	}
	fresh := len(names) == 0
	s := &Store{dir: dir, opts: cfg.Options, acct: replication.NewAccounts()}
	if !fresh {
		// Check everything read-only first: a refused store is left
		// exactly as it was (a read-write open replays and rewrites the
		// log, and compactions would start on damaged tables).
		ro, err := s.pebbleOpen(fs, logf, true)
		if err != nil {
			return nil, err
		}
		s.db = ro
		err = s.load(cfg.VerifySignatures)
		if cerr := ro.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("replication: store %s: %w", dir, cerr)
		}
		if err != nil {
			return nil, err
		}
	}
	db, err := s.pebbleOpen(fs, logf, false)
	if err != nil {
		return nil, err
	}
	s.db = db
	if fresh {
		if err := db.Set(formatKey, []byte(Format), pebble.Sync); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("replication: store %s: %w", dir, err)
		}
	}
	return s, nil
}

// pebbleOpen opens the database, read-only or to create it if it does
// not exist.
func (s *Store) pebbleOpen(fs vfs.FS, logf func(string, ...any), readOnly bool) (*pebble.DB, error) {
	dir := s.dir
	db, err := pebble.Open(dir, &pebble.Options{
		FS:               fs,
		ReadOnly:         readOnly,
		ErrorIfNotExists: readOnly,
		Logger:           logger{logf},
		// Pebble's default stops the process on corruption found while
		// reading; the read fails with an error marked ErrCorruption
		// anyway, which the store returns.
		EventListener: &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
			logf("pebble: %s: %v", info.Path, info.Details)
		}},
	})
	if err != nil {
		switch {
		case errors.Is(err, pebble.ErrDBDoesNotExist):
			return nil, fmt.Errorf("replication: %s is not empty and holds no store (%v): give the store a directory of its own", dir, err)
		case errors.Is(err, pebble.ErrCorruption):
			return nil, fmt.Errorf("%w: %s: %v; %s", replication.ErrCorrupt, dir, err, whatToDo(dir))
		}
		return nil, fmt.Errorf("replication: cannot open the store in %s: %w (another process using it? if it is damaged: %s)", dir, err, whatToDo(dir))
	}
	return db, nil
}

// corrupt is the refusal for a damaged store.
func (s *Store) corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s; %s", replication.ErrCorrupt, s.dir, fmt.Sprintf(format, args...), whatToDo(s.dir))
}

// load checks every pair of the store and counts the records.
func (s *Store) load(verify bool) error {
	v, closer, err := s.db.Get(formatKey)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return s.corrupt("no format key: not a replication store, or damaged")
		}
		return s.corrupt("reading the format key: %v", err)
	}
	format := string(v)
	_ = closer.Close()
	if format != Format {
		return s.corrupt("format %q, this program reads %q", format, Format)
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return s.corrupt("%v", err)
	}
	defer it.Close()
	lim := s.opts.Limits
	entries := map[id.ID]replication.Entry{}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if bytes.Equal(k, formatKey) {
			continue
		}
		if len(k) != 1+id.Len || (k[0] != prefixEntry && k[0] != prefixRecord) {
			return s.corrupt("unknown key %x", k)
		}
		var key id.ID
		copy(key[:], k[1:])
		val, err := it.ValueAndErr()
		if err != nil {
			return s.corrupt("reading %x: %v", k, err)
		}
		if k[0] == prefixEntry {
			e, err := decodeEntry(key, val)
			if err != nil {
				return s.corrupt("entry %s: %v", key, err)
			}
			entries[key] = e
			continue
		}
		// Records sort after entries: every entry has been read.
		e, ok := entries[key]
		if !ok {
			return s.corrupt("record %s has no entry", key)
		}
		delete(entries, key)
		rec, err := replication.UnmarshalRecord(val, lim)
		if errors.Is(err, replication.ErrTooLarge) {
			return fmt.Errorf("replication: store %s holds record %s over the configured limits (%v): raise them back, nothing was changed", s.dir, key, err)
		}
		if err != nil {
			return s.corrupt("record %s: %v", key, err)
		}
		if err := rec.CheckKey(key); err != nil {
			return s.corrupt("record stored under %s: %v", key, err)
		}
		if verify {
			if err := rec.ValidateStatic(lim); err != nil {
				return s.corrupt("record %s: %v", key, err)
			}
		}
		want, _ := rec.Entry()
		if want != e {
			return s.corrupt("record %s does not match its entry", key)
		}
		s.acct.Add(e)
	}
	if err := it.Error(); err != nil {
		return s.corrupt("%v", err)
	}
	for key := range entries {
		return s.corrupt("entry %s has no record", key)
	}
	return nil
}

// entryLen is the length of an entry's encoding: format (1), kind (1),
// tombstone (1), version (8), expiry (8), size (4), digest (32), owner
// (32).
const entryLen = 1 + 1 + 1 + 8 + 8 + 4 + replication.DigestSize + replication.KeySize

const entryFormat = 1

func encodeEntry(e replication.Entry) []byte {
	b := make([]byte, 0, entryLen)
	b = append(b, entryFormat, byte(e.Kind))
	t := byte(0)
	if e.Tombstone {
		t = 1
	}
	b = append(b, t)
	b = binary.BigEndian.AppendUint64(b, e.Version)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Expiry))
	b = binary.BigEndian.AppendUint32(b, uint32(e.Size))
	b = append(b, e.Digest[:]...)
	return append(b, e.Owner[:]...)
}

func decodeEntry(key id.ID, b []byte) (replication.Entry, error) {
	if len(b) != entryLen || b[0] != entryFormat || b[2] > 1 {
		return replication.Entry{}, fmt.Errorf("entry of %d bytes, not %d bytes of format %d", len(b), entryLen, entryFormat)
	}
	e := replication.Entry{
		Key: key, Kind: replication.Kind(b[1]), Tombstone: b[2] == 1,
		Version: binary.BigEndian.Uint64(b[3:]), Expiry: int64(binary.BigEndian.Uint64(b[11:])),
		Size: int(binary.BigEndian.Uint32(b[19:])),
	}
	copy(e.Digest[:], b[23:])
	copy(e.Owner[:], b[23+replication.DigestSize:])
	return e, nil
}

func dbKey(prefix byte, key id.ID) []byte {
	b := make([]byte, 1+id.Len)
	b[0] = prefix
	copy(b[1:], key[:])
	return b
}

// get returns the value at k, copied; nil if absent.
func (s *Store) get(k []byte) ([]byte, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replication: store %s: read: %w", s.dir, err)
	}
	out := bytes.Clone(v)
	_ = closer.Close()
	return out, nil
}

func (s *Store) entry(key id.ID) (replication.Entry, bool, error) {
	v, err := s.get(dbKey(prefixEntry, key))
	if err != nil || v == nil {
		return replication.Entry{}, false, err
	}
	e, err := decodeEntry(key, v)
	if err != nil {
		return e, false, s.corrupt("entry %s: %v", key, err)
	}
	return e, true, nil
}

// Put implements replication.Store.
func (s *Store) Put(now int64, rec *replication.Record) (bool, error) {
	p, err := replication.Prepare(now, rec, s.opts)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return false, replication.ErrClosed
	}
	old, had, err := s.entry(p.Entry.Key)
	if err != nil {
		return false, err
	}
	var oldp *replication.Entry
	if had {
		oldp = &old
		replace, err := replication.SupersedesEntry(old, p.Entry)
		if err != nil || !replace {
			return false, err
		}
	}
	if err := s.acct.Admit(oldp, p.Entry, s.opts); err != nil {
		return false, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(dbKey(prefixEntry, p.Entry.Key), encodeEntry(p.Entry), nil)
	_ = b.Set(dbKey(prefixRecord, p.Entry.Key), p.Enc, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return false, fmt.Errorf("replication: store %s: write: %w", s.dir, err)
	}
	if had {
		s.acct.Remove(old)
	}
	s.acct.Add(p.Entry)
	return true, nil
}

// Get implements replication.Store.
func (s *Store) Get(key id.ID) (*replication.Record, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, false, replication.ErrClosed
	}
	v, err := s.get(dbKey(prefixRecord, key))
	if err != nil || v == nil {
		return nil, false, err
	}
	r, err := replication.UnmarshalRecord(v, replication.Limits{MaxValue: replication.MaxValueLimit})
	if err != nil {
		return nil, false, s.corrupt("record %s: %v", key, err)
	}
	return r, true, nil
}

// Entry implements replication.Store.
func (s *Store) Entry(key id.ID) (replication.Entry, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return replication.Entry{}, false, replication.ErrClosed
	}
	return s.entry(key)
}

// scan calls fn with the keys and values under prefix whose keys are in
// [lo, hi], in arc order, until fn returns false.
func (s *Store) scan(db *pebble.DB, prefix byte, lo, hi id.ID, fn func(key id.ID, v []byte) (bool, error)) error {
	if db == nil {
		return replication.ErrClosed
	}
	// Every segment's iterator is made first, so that all read the same
	// point in time whatever fn writes.
	var its []*pebble.Iterator
	defer func() {
		for _, it := range its {
			_ = it.Close()
		}
	}()
	for _, seg := range replication.Segments(lo, hi) {
		it, err := db.NewIter(&pebble.IterOptions{
			LowerBound: dbKey(prefix, seg[0]),
			UpperBound: append(dbKey(prefix, seg[1]), 0), // just past 'prefix' ‖ seg[1]
		})
		if err != nil {
			return fmt.Errorf("replication: store %s: %w", s.dir, err)
		}
		its = append(its, it)
	}
	for _, it := range its {
		for ok := it.First(); ok; ok = it.Next() {
			var key id.ID
			copy(key[:], it.Key()[1:])
			v, err := it.ValueAndErr()
			if err != nil {
				return s.corrupt("reading %s: %v", key, err)
			}
			more, err := fn(key, v)
			if err != nil || !more {
				return err
			}
		}
		if err := it.Error(); err != nil {
			return fmt.Errorf("replication: store %s: %w", s.dir, err)
		}
	}
	return nil
}

// Range implements replication.Store. Pebble's iterators read a
// snapshot, so fn may call the store; Close must not run meanwhile.
func (s *Store) Range(lo, hi id.ID, fn func(*replication.Record) bool) error {
	return s.scan(s.current(), prefixRecord, lo, hi, func(key id.ID, v []byte) (bool, error) {
		r, err := replication.UnmarshalRecord(v, replication.Limits{MaxValue: replication.MaxValueLimit})
		if err != nil {
			return false, s.corrupt("record %s: %v", key, err)
		}
		return fn(r), nil
	})
}

// Entries implements replication.Store, as Range.
func (s *Store) Entries(lo, hi id.ID, fn func(replication.Entry) bool) error {
	return s.entries(s.current(), lo, hi, fn)
}

// current is the database, nil once closed.
func (s *Store) current() *pebble.DB {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db
}

func (s *Store) entries(db *pebble.DB, lo, hi id.ID, fn func(replication.Entry) bool) error {
	return s.scan(db, prefixEntry, lo, hi, func(key id.ID, v []byte) (bool, error) {
		e, err := decodeEntry(key, v)
		if err != nil {
			return false, s.corrupt("entry %s: %v", key, err)
		}
		return fn(e), nil
	})
}

// Summary implements replication.Store.
func (s *Store) Summary(lo, hi id.ID) (replication.Summary, error) {
	var sum replication.Summary
	err := s.Entries(lo, hi, func(e replication.Entry) bool { sum.Add(e); return true })
	return sum, err
}

// Delete implements replication.Store.
func (s *Store) Delete(key id.ID) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return false, replication.ErrClosed
	}
	e, ok, err := s.entry(key)
	if err != nil || !ok {
		return false, err
	}
	return true, s.remove([]replication.Entry{e})
}

// remove deletes es in one synced batch and uncounts them.
func (s *Store) remove(es []replication.Entry) error {
	if len(es) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, e := range es {
		_ = b.Delete(dbKey(prefixEntry, e.Key), nil)
		_ = b.Delete(dbKey(prefixRecord, e.Key), nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("replication: store %s: delete: %w", s.dir, err)
	}
	for _, e := range es {
		s.acct.Remove(e)
	}
	return nil
}

// Collect implements replication.Store.
func (s *Store) Collect(now int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []replication.Entry
	err := s.entries(s.db, id.ID{}, replication.MaxID, func(e replication.Entry) bool {
		if e.Expired(now) {
			gone = append(gone, e)
		}
		return true
	})
	if err == nil {
		err = s.remove(gone)
	}
	if err != nil {
		return 0, err
	}
	return len(gone), nil
}

// Stats implements replication.Store.
func (s *Store) Stats() replication.Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.acct.Stats()
}

// Space implements replication.SpaceReporter.
func (s *Store) Space() (used, capacity int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.acct.Used(), s.opts.Capacity
}

// Close implements replication.Store: it closes the database (whose
// writes were all synced already).
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return replication.ErrClosed
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("replication: store %s: close: %w", s.dir, err)
	}
	return nil
}

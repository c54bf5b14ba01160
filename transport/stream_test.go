package transport

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// recordWriter records each Write and fails the one numbered failAt (from
// 1; 0 never).
type recordWriter struct {
	writes [][]byte
	failAt int
}

func (w *recordWriter) Write(p []byte) (int, error) {
	if len(w.writes)+1 == w.failAt {
		return 0, errors.New("boom")
	}
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func framesOf(sizes ...int) []*outFrame {
	var fs []*outFrame
	for i, n := range sizes {
		b := getBuf(n)
		*b = append((*b)[:0], bytes.Repeat([]byte{byte(i + 1)}, n)...)
		fs = append(fs, newOutFrame(b))
	}
	return fs
}

func TestWriteFramesGathersSmallFramesOnly(t *testing.T) {
	sizes := []int{100, 200, gatherBytes + 1, 50, gatherBytes - 50, 300, 7}
	batch := framesOf(sizes...)
	var w recordWriter
	n, err := writeFrames(&w, batch)
	if err != nil || n != len(batch) {
		t.Fatalf("writeFrames = %d, %v; want %d, nil", n, err, len(batch))
	}
	var lens []int
	var all, want []byte
	for _, b := range w.writes {
		lens = append(lens, len(b))
		all = append(all, b...)
	}
	for _, f := range batch {
		want = append(want, *f.buf...)
	}
	// 100+200 gathered; the large frame alone; 50 and gatherBytes-50 fill
	// one write exactly; 300+7 the last.
	if wantLens := []int{300, gatherBytes + 1, gatherBytes, 307}; !slices.Equal(lens, wantLens) {
		t.Fatalf("write sizes %v, want %v", lens, wantLens)
	}
	if !bytes.Equal(all, want) {
		t.Fatal("the writes do not hold the frames in order")
	}
	for _, f := range batch {
		f.free()
	}
}

func TestWriteFramesCountsWhatWasWritten(t *testing.T) {
	batch := framesOf(100, gatherBytes, 100, 100)
	w := recordWriter{failAt: 3} // the 100+100 write fails
	n, err := writeFrames(&w, batch)
	if err == nil || n != 2 {
		t.Fatalf("writeFrames = %d, %v; want 2 frames written and the error", n, err)
	}
	one := framesOf(10)
	if n, err := writeFrames(&recordWriter{failAt: 1}, one); err == nil || n != 0 {
		t.Fatalf("one frame, failed write: %d, %v; want 0 and the error", n, err)
	}
	if gatherBytes != bufClasses[1] {
		t.Fatalf("gatherBytes %d is not a pooled buffer class (%v)", gatherBytes, bufClasses)
	}
}

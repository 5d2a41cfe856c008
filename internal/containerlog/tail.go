package containerlog

import (
	"bytes"
	"fmt"
	"io"
)

const (
	// tailBlock is how much of the file tailOffset reads at a time.
	tailBlock = 32 << 10
	// headerMax is enough of a raw line to hold its time, stream and tag.
	headerMax = 128
)

// tailOffset returns the offset in the first size bytes of r at which the
// last n logical lines begin, counting a run of partial lines and the line
// that ends it as one, the way Copy prints them. It reads backwards from the
// end in blocks, so it costs about n lines of I/O however big the file is.
//
// A raw line starts a logical line when the raw line before it is not
// partial, or when it is malformed (Copy prints those on a line of their
// own). An unterminated last raw line, still being written, counts too.
func tailOffset(r io.ReaderAt, size, n int64) (int64, error) {
	if n <= 0 {
		return size, nil
	}
	if size == 0 {
		return 0, nil
	}
	s := backScanner{r: r}
	if err := s.load(size); err != nil {
		return 0, err
	}
	lineEnd := size   // end of the raw line being looked at, terminator included
	searchEnd := size // its own "\n", if any, lies at searchEnd
	if s.buf[len(s.buf)-1] == '\n' {
		searchEnd = size - 1
	}

	var found int64
	later, laterCounted := int64(-1), false // start of the raw line after this one
	for lineEnd > 0 {
		nl, err := s.lastNewline(searchEnd)
		if err != nil {
			return 0, err
		}
		start := nl + 1
		hdr, err := s.header(start, lineEnd)
		if err != nil {
			return 0, err
		}
		e, perr := Parse(hdr)
		if later >= 0 && !laterCounted && (perr != nil || !e.Partial) {
			if found++; found == n {
				return later, nil
			}
		}
		laterCounted = false
		if perr != nil {
			if found++; found == n {
				return start, nil
			}
			laterCounted = true
		}
		later, lineEnd, searchEnd = start, start, start-1
	}
	// Fewer than n lines: the first line of the file is the last to count.
	return 0, nil
}

// backScanner finds newlines backwards from the end of a file, keeping one
// block in memory.
type backScanner struct {
	r   io.ReaderAt
	buf []byte
	off int64 // file offset of buf[0]
}

// load reads the block that ends at end.
func (s *backScanner) load(end int64) error {
	start := max(0, end-tailBlock)
	if cap(s.buf) < tailBlock {
		s.buf = make([]byte, tailBlock)
	}
	s.buf = s.buf[:end-start]
	n, err := s.r.ReadAt(s.buf, start)
	if n < len(s.buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("containerlog: reading tail: %w", err)
	}
	s.off = start
	return nil
}

// lastNewline returns the offset of the last "\n" before end, or -1.
func (s *backScanner) lastNewline(end int64) (int64, error) {
	for end > 0 {
		if end <= s.off || end > s.off+int64(len(s.buf)) {
			if err := s.load(end); err != nil {
				return 0, err
			}
		}
		if i := bytes.LastIndexByte(s.buf[:end-s.off], '\n'); i >= 0 {
			return s.off + int64(i), nil
		}
		end = s.off
	}
	return -1, nil
}

// header returns up to headerMax bytes of the raw line [start, end).
func (s *backScanner) header(start, end int64) ([]byte, error) {
	n := min(int64(headerMax), end-start)
	if start >= s.off && start+n <= s.off+int64(len(s.buf)) {
		return s.buf[start-s.off : start-s.off+n], nil
	}
	// The line runs past the block we hold, which was read for an earlier
	// part of the scan; one small read beats reloading.
	b := make([]byte, n)
	if m, err := s.r.ReadAt(b, start); m < len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("containerlog: reading tail: %w", err)
	}
	return b, nil
}

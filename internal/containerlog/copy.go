package containerlog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Options select what Copy writes; they carry the meaning of the matching
// `kubectl logs` flags.
type Options struct {
	// Follow keeps copying what the runtime appends until the container
	// stops or the context ends.
	Follow bool
	// TailLines, when set and not negative, starts that many lines before
	// the end, a line being whole after joining its partial parts.
	TailLines *int64
	// SinceTime drops lines stamped before it. It applies after TailLines,
	// as kubelet does.
	SinceTime *time.Time
	// Timestamps prefixes each line with its RFC3339Nano time and a space.
	Timestamps bool
	// LimitBytes, when set, stops after that many bytes of output, possibly
	// in the middle of a line.
	LimitBytes *int64
}

// pollInterval is how often a following Copy looks for new data.
const pollInterval = 200 * time.Millisecond

// chunkMax bounds the memory one raw line may take; longer lines are copied
// in pieces.
const chunkMax = 64 << 10

// errLimit ends the copy once LimitBytes have been written.
var errLimit = errors.New("containerlog: byte limit reached")

// Copy writes the log file at path to w as `kubectl logs` shows it: the
// content of each line, partial lines joined, stdout and stderr interleaved
// in file order. Lines that do not parse are copied verbatim.
//
// Without Follow it returns at the end of the file. With Follow it polls the
// file for appended data, flushing w after each batch when w is an
// http.Flusher, until ctx is done (it then returns ctx.Err()) or running
// reports false and everything written so far has been copied; a nil
// running means the container never stops. When the file is rotated
// (renamed and recreated) the rest of the old file is copied and the new one
// followed from its start.
func Copy(ctx context.Context, path string, opt Options, w io.Writer, running func() bool) error {
	if opt.LimitBytes != nil && *opt.LimitBytes <= 0 {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("containerlog: %w", err)
	}
	defer func() { f.Close() }() // f changes on rotation
	if opt.TailLines != nil && *opt.TailLines >= 0 {
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("containerlog: %w", err)
		}
		off, err := tailOffset(f, fi.Size(), *opt.TailLines)
		if err != nil {
			return err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return fmt.Errorf("containerlog: %w", err)
		}
	}

	p := newPrinter(w, opt)
	lr := newLineReader(f)
	timer := time.NewTimer(pollInterval)
	defer timer.Stop()
	for {
		// Ask before draining: whatever a stopped container wrote is in
		// the file by the time running says false, so one more drain gets it.
		alive := opt.Follow && (running == nil || running())
		if err := p.drain(ctx, lr); err != nil {
			return p.finish(err)
		}
		if !alive {
			return p.finish(p.end(lr))
		}
		if err := p.flush(); err != nil {
			return err
		}

		timer.Reset(pollInterval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}

		next, truncated, err := reopen(path, f)
		if err != nil {
			return p.finish(err)
		}
		if truncated {
			// What was buffered of an unfinished line is gone from the file.
			lr.rest()
		}
		if next != nil {
			// The runtime may still have written to the old file between
			// our last read and reopening its log.
			if err := p.drain(ctx, lr); err != nil {
				next.Close()
				return p.finish(err)
			}
			if err := p.end(lr); err != nil {
				next.Close()
				return p.finish(err)
			}
			f.Close()
			f, lr = next, newLineReader(next)
		}
	}
}

// reopen returns a new handle on path when the file there is no longer f,
// and rewinds f and reports it when f was truncated. It returns no handle
// while path is missing, which is the moment between a rotation's rename and
// the runtime recreating the file.
func reopen(path string, f *os.File) (next *os.File, truncated bool, err error) {
	now, err := os.Stat(path)
	if err != nil {
		return nil, false, nil
	}
	cur, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("containerlog: %w", err)
	}
	if !os.SameFile(now, cur) {
		next, err := os.Open(path)
		if err != nil {
			return nil, false, nil // gone again; try on the next poll
		}
		return next, false, nil
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, false, fmt.Errorf("containerlog: %w", err)
	}
	if cur.Size() >= pos {
		return nil, false, nil
	}
	// Truncated in place (copytruncate rotation): start over.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, false, fmt.Errorf("containerlog: %w", err)
	}
	return nil, true, nil
}

// lineReader splits a file into raw lines. Unlike bufio.Reader it keeps an
// unterminated last line buffered at end of file, because a followed file
// may get the rest of that line on the next poll.
type lineReader struct {
	r      io.Reader
	buf    []byte
	lo, hi int
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: r, buf: make([]byte, chunkMax)}
}

// next returns the next raw line without its "\n". A line longer than the
// buffer comes in pieces, more being true for all but the last one. At the
// end of the data it returns io.EOF. The slice is valid until the next call.
func (lr *lineReader) next() (line []byte, more bool, err error) {
	scanned := lr.lo
	for {
		if i := bytes.IndexByte(lr.buf[scanned:lr.hi], '\n'); i >= 0 {
			line = lr.buf[lr.lo : scanned+i]
			lr.lo = scanned + i + 1
			return line, false, nil
		}
		if lr.hi-lr.lo == len(lr.buf) {
			line = lr.buf[lr.lo:lr.hi]
			lr.lo, lr.hi = 0, 0
			return line, true, nil
		}
		if lr.lo > 0 {
			lr.hi = copy(lr.buf, lr.buf[lr.lo:lr.hi])
			lr.lo = 0
		}
		scanned = lr.hi
		n, err := lr.r.Read(lr.buf[lr.hi:])
		lr.hi += n
		if n == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			return nil, false, err
		}
	}
}

// rest removes and returns the unterminated data at the end.
func (lr *lineReader) rest() []byte {
	b := lr.buf[lr.lo:lr.hi]
	lr.lo, lr.hi = 0, 0
	return b
}

// printer turns raw lines into output, keeping the state that spans lines.
type printer struct {
	w     io.Writer
	bw    *bufio.Writer
	since *time.Time
	stamp bool
	left  int64 // bytes still allowed, or -1 for no limit

	open bool // a partial line was printed and waits for its next part
	skip bool // the current logical line is older than since

	// Set while a raw line longer than chunkMax is coming in pieces.
	midRaw       bool
	rawPartial   bool
	rawMalformed bool

	scratch []byte
}

func newPrinter(w io.Writer, opt Options) *printer {
	p := &printer{w: w, bw: bufio.NewWriterSize(w, 32<<10), since: opt.SinceTime, stamp: opt.Timestamps, left: -1}
	if opt.LimitBytes != nil {
		p.left = *opt.LimitBytes
	}
	return p
}

// drain prints every complete raw line available now.
func (p *printer) drain(ctx context.Context, lr *lineReader) error {
	for i := 0; ; i++ {
		// A big file without Follow can take a while; notice a client
		// that went away without paying for ctx.Err on every line.
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, more, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("containerlog: %w", err)
		}
		if err := p.line(line, more); err != nil {
			return err
		}
	}
}

// end prints an unterminated last raw line once no more data will come.
func (p *printer) end(lr *lineReader) error {
	rest := lr.rest()
	if len(rest) == 0 && !p.midRaw {
		return nil
	}
	return p.line(rest, false)
}

// line prints one raw line, or one piece of it when more is true.
func (p *printer) line(raw []byte, more bool) error {
	if p.midRaw {
		if !more && !p.rawMalformed {
			raw = bytes.TrimSuffix(raw, []byte("\r"))
		}
		if !p.skip {
			if err := p.write(raw); err != nil {
				return err
			}
		}
		if more {
			return nil
		}
		return p.endRaw()
	}

	e, err := Parse(raw)
	if err != nil {
		// Not ours to judge: show it, on a line of its own.
		if p.open && !p.skip {
			if err := p.write([]byte("\n")); err != nil {
				return err
			}
		}
		p.open, p.skip = false, false
		p.rawMalformed = true
		if err := p.write(raw); err != nil {
			return err
		}
	} else {
		if !p.open {
			p.skip = p.since != nil && e.Time.Before(*p.since)
			if !p.skip && p.stamp {
				p.scratch = e.Time.AppendFormat(p.scratch[:0], time.RFC3339Nano)
				p.scratch = append(p.scratch, ' ')
				if err := p.write(p.scratch); err != nil {
					return err
				}
			}
		}
		p.rawMalformed = false
		p.rawPartial = e.Partial
		if !p.skip {
			if err := p.write(e.Content); err != nil {
				return err
			}
		}
	}
	if more {
		p.midRaw = true
		return nil
	}
	return p.endRaw()
}

// endRaw finishes a raw line: a full or malformed one ends the logical line.
func (p *printer) endRaw() error {
	p.midRaw = false
	if !p.rawMalformed && p.rawPartial {
		p.open = true
		return nil
	}
	p.open = false
	if p.skip {
		return nil
	}
	return p.write([]byte("\n"))
}

// write writes b, cut short at the byte limit.
func (p *printer) write(b []byte) error {
	if p.left >= 0 {
		if int64(len(b)) >= p.left {
			b = b[:p.left]
			p.left = 0
			if _, err := p.bw.Write(b); err != nil {
				return err
			}
			return errLimit
		}
		p.left -= int64(len(b))
	}
	_, err := p.bw.Write(b)
	return err
}

// flush pushes buffered output to the client.
func (p *printer) flush() error {
	if err := p.bw.Flush(); err != nil {
		return err
	}
	if f, ok := p.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// finish flushes and turns the byte limit into success.
func (p *printer) finish(err error) error {
	if ferr := p.flush(); err == nil || errors.Is(err, errLimit) {
		return ferr
	}
	return err
}

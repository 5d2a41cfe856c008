package containerlog

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// The streams a CRI runtime tags each line with.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("containerlog: malformed log line")

// Entry is one line of a CRI log file:
// `<RFC3339Nano time> <stdout|stderr> <F|P>[:more tags] <content>`.
type Entry struct {
	Time   time.Time
	Stream string
	// Partial is true for a P line: the container wrote no newline yet and
	// the following parts of the same line come in later entries.
	Partial bool
	// Content is the text without the line terminator. It aliases the slice
	// given to Parse.
	Content []byte
}

// Parse parses one raw line, with or without its "\n" or "\r\n" terminator.
func Parse(line []byte) (Entry, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))

	ts, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return Entry{}, fmt.Errorf("%w: no stream field", ErrMalformed)
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return Entry{}, fmt.Errorf("%w: bad timestamp %q", ErrMalformed, ts)
	}
	stream, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return Entry{}, fmt.Errorf("%w: no tag field", ErrMalformed)
	}
	var e Entry
	switch string(stream) {
	case Stdout:
		e.Stream = Stdout
	case Stderr:
		e.Stream = Stderr
	default:
		return Entry{}, fmt.Errorf("%w: unknown stream %q", ErrMalformed, stream)
	}
	// containerd always writes the space after the tag, but an empty line
	// without it is unambiguous, so accept it.
	tags, content, _ := bytes.Cut(rest, []byte(" "))
	// The CRI format reserves ":" to add more tags later; only the first
	// one, partial or full, means anything today.
	tag, _, _ := bytes.Cut(tags, []byte(":"))
	switch string(tag) {
	case "P":
		e.Partial = true
	case "F":
	default:
		return Entry{}, fmt.Errorf("%w: unknown tag %q", ErrMalformed, tags)
	}
	e.Time = t
	e.Content = content
	return e, nil
}

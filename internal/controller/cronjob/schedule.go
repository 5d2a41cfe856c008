package cronjob

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // spec.timeZone must not depend on the host's zoneinfo
)

// Schedule is a parsed cron schedule. Activations fall on whole minutes of
// the wall clock in the schedule's location: an instant is an activation
// when its local month, day, hour and minute all match. A wall-clock time
// skipped by a DST jump therefore never fires, and one repeated when the
// clocks go back fires twice — as the parser upstream's controller uses.
type Schedule struct {
	minute, hour, dom, month, dow uint64
	// domAny and dowAny record that the field was written as * or ? (not
	// stepped): then a day must match both fields. When both are
	// restricted, cron runs on a day matching either.
	domAny, dowAny bool
	// every is the period of an "@every <duration>" schedule; such a
	// schedule counts from the time it is asked about, not the wall clock.
	every time.Duration
	// loc is where the wall clock is read; nil means the location of the
	// time passed to Next or Prev.
	loc *time.Location
}

// searchYears bounds how far Next and Prev look: a schedule that matches
// nothing within it (the 30th of February) has no activations.
const searchYears = 5

type fieldRange struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	minuteField = fieldRange{"minute", 0, 59, nil}
	hourField   = fieldRange{"hour", 0, 23, nil}
	domField    = fieldRange{"day of month", 1, 31, nil}
	monthField  = fieldRange{"month", 1, 12, map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}}
	dowField = fieldRange{"day of week", 0, 6, map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}}
)

// macros are the descriptors that stand for a five-field schedule.
var macros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// ParseSchedule reads a standard cron schedule: five fields (minute, hour,
// day of month, month, day of week) of *, ?, values, names, ranges, steps
// and lists, or a macro such as @daily, or "@every <duration>". A leading
// TZ=<zone> or CRON_TZ=<zone> is honoured because objects stored before
// validation refused it must keep running; new objects use spec.timeZone.
// Errors are worded as upstream's parser words them.
func ParseSchedule(spec string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("empty spec string")
	}
	var loc *time.Location
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		prefix, rest, _ := strings.Cut(spec, " ")
		_, name, _ := strings.Cut(prefix, "=")
		l, err := time.LoadLocation(name)
		if err != nil {
			return nil, fmt.Errorf("provided bad location %s: %v", name, err)
		}
		loc, spec = l, strings.TrimSpace(rest)
	}
	if strings.HasPrefix(spec, "@") {
		if d, ok := strings.CutPrefix(spec, "@every "); ok {
			period, err := time.ParseDuration(d)
			if err != nil {
				return nil, fmt.Errorf("failed to parse duration %s: %s", spec, err)
			}
			// The period is whole seconds and at least one, as upstream's.
			period = max(period, time.Second)
			return &Schedule{every: period - period%time.Second, loc: loc}, nil
		}
		expanded, ok := macros[spec]
		if !ok {
			return nil, fmt.Errorf("unrecognized descriptor: %s", spec)
		}
		spec = expanded
	}
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		return nil, fmt.Errorf("expected exactly 5 fields, found %d: %s", len(fields), fields)
	}
	s := &Schedule{loc: loc}
	var err error
	if s.minute, _, err = parseField(fields[0], minuteField); err != nil {
		return nil, err
	}
	if s.hour, _, err = parseField(fields[1], hourField); err != nil {
		return nil, err
	}
	if s.dom, s.domAny, err = parseField(fields[2], domField); err != nil {
		return nil, err
	}
	if s.month, _, err = parseField(fields[3], monthField); err != nil {
		return nil, err
	}
	if s.dow, s.dowAny, err = parseField(fields[4], dowField); err != nil {
		return nil, err
	}
	return s, nil
}

// In returns the schedule read on the wall clock of loc. A schedule that
// named its own zone with TZ= keeps it.
func (s *Schedule) In(loc *time.Location) *Schedule {
	out := *s
	if out.loc == nil {
		out.loc = loc
	}
	return &out
}

// parseField returns the bit set of one comma-separated field and whether
// it contains an unrestricted * or ? term.
func parseField(field string, r fieldRange) (bits uint64, unrestricted bool, err error) {
	for _, term := range strings.Split(field, ",") {
		b, u, err := parseTerm(term, r)
		if err != nil {
			return 0, false, err
		}
		bits |= b
		unrestricted = unrestricted || u
	}
	return bits, unrestricted, nil
}

// parseTerm reads one of: *, ?, v, a-b, each optionally followed by /step.
// "v/step" means from v to the end of the field.
func parseTerm(term string, r fieldRange) (bits uint64, unrestricted bool, err error) {
	rng, stepText, hasStep := strings.Cut(term, "/")
	if strings.Contains(stepText, "/") {
		return 0, false, fmt.Errorf("too many slashes: %s", term)
	}
	var lo, hi int
	parts := strings.Split(rng, "-")
	if parts[0] == "*" || parts[0] == "?" {
		// Upstream's parser ignores anything after "*-", and the API
		// server's validation accepts it; so must we.
		lo, hi, unrestricted = r.min, r.max, true
	} else {
		if len(parts) > 2 {
			return 0, false, fmt.Errorf("too many hyphens: %s", term)
		}
		if lo, err = parseValue(parts[0], r); err != nil {
			return 0, false, err
		}
		hi = lo
		if len(parts) == 2 {
			if hi, err = parseValue(parts[1], r); err != nil {
				return 0, false, err
			}
		} else if hasStep {
			hi = r.max
		}
	}
	step := 1
	if hasStep {
		if step, err = parseNumber(stepText); err != nil {
			return 0, false, err
		}
		if step <= 0 {
			return 0, false, fmt.Errorf("step of range should be a positive number: %s", term)
		}
		// "*/2" restricts the field, so it no longer counts as "any" for
		// the day-of-month/day-of-week rule; "*/1" still does.
		unrestricted = unrestricted && step == 1
	}
	switch {
	case lo < r.min:
		return 0, false, fmt.Errorf("beginning of range (%d) below minimum (%d): %s", lo, r.min, term)
	case hi > r.max:
		return 0, false, fmt.Errorf("end of range (%d) above maximum (%d): %s", hi, r.max, term)
	case lo > hi:
		return 0, false, fmt.Errorf("beginning of range (%d) beyond end of range (%d): %s", lo, hi, term)
	}
	for v := lo; v <= hi; v += step {
		bits |= 1 << uint(v)
	}
	return bits, unrestricted, nil
}

func parseValue(s string, r fieldRange) (int, error) {
	if v, ok := r.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	return parseNumber(s)
}

func parseNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("failed to parse int from %s: %s", s, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative number (%d) not allowed: %s", n, s)
	}
	return n, nil
}

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

// dayMatches applies cron's rule for the two day fields: if either is
// unrestricted both must match, otherwise either one is enough.
func (s *Schedule) dayMatches(t time.Time) bool {
	dom, dow := has(s.dom, t.Day()), has(s.dow, int(t.Weekday()))
	if s.domAny || s.dowAny {
		return dom && dow
	}
	return dom || dow
}

// Next returns the first activation strictly after t, in t's location, or
// the zero time if there is none within five years.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		return t.Add(s.every - time.Duration(t.Nanosecond()))
	}
	orig := t.Location()
	loc := s.loc
	if loc == nil {
		loc = orig
	}
	t = t.In(loc)
	// The next whole minute of the local clock.
	t = t.Add(time.Duration(60-t.Second())*time.Second - time.Duration(t.Nanosecond()))
	limit := t.AddDate(searchYears, 0, 0)
	for t.Before(limit) {
		var next time.Time
		// Skip whole months, days and hours that cannot match. Hours are
		// stepped one by one in absolute time, which is what keeps a DST
		// jump from carrying the search past a matching hour.
		switch {
		case !has(s.month, int(t.Month())):
			next = dayStart(t.Year(), t.Month()+1, 1, loc)
		case !s.dayMatches(t):
			next = dayStart(t.Year(), t.Month(), t.Day()+1, loc)
		case !has(s.hour, t.Hour()):
			next = t.Add(time.Duration(60-t.Minute()) * time.Minute)
		case !has(s.minute, t.Minute()):
			next = t.Add(time.Minute)
		default:
			return t.In(orig)
		}
		if !next.After(t) {
			next = t.Add(time.Minute) // never stall, whatever the zone data says
		}
		t = next
	}
	return time.Time{}
}

// Prev returns the last activation at or before t, in t's location, or the
// zero time if there is none within five years. An @every schedule has no
// fixed activations, so Prev of one is always zero.
func (s *Schedule) Prev(t time.Time) time.Time {
	if s.every > 0 {
		return time.Time{}
	}
	orig := t.Location()
	loc := s.loc
	if loc == nil {
		loc = orig
	}
	t = t.In(loc)
	// The whole minute of the local clock at or before t.
	t = t.Add(-time.Duration(t.Second())*time.Second - time.Duration(t.Nanosecond()))
	limit := t.AddDate(-searchYears, 0, 0)
	for t.After(limit) {
		var prev time.Time
		switch {
		case !has(s.month, int(t.Month())):
			prev = dayStart(t.Year(), t.Month(), 1, loc).Add(-time.Minute)
		case !s.dayMatches(t):
			prev = dayStart(t.Year(), t.Month(), t.Day(), loc).Add(-time.Minute)
		case !has(s.hour, t.Hour()):
			prev = t.Add(-time.Duration(t.Minute()+1) * time.Minute)
		case !has(s.minute, t.Minute()):
			prev = t.Add(-time.Minute)
		default:
			return t.In(orig)
		}
		if !prev.Before(t) {
			prev = t.Add(-time.Minute)
		}
		t = prev
	}
	return time.Time{}
}

// dayStart is the first instant of a local calendar day (y, m, d are
// normalized as time.Date does). Where the clocks jump over midnight,
// time.Date may answer with an instant of the day before; the day then
// starts at the jump, when the old clock would have read 24:00.
func dayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	want := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	gy, gm, gd := t.Date()
	if time.Date(gy, gm, gd, 0, 0, 0, 0, time.UTC).Before(want) {
		h, mi, sec := t.Clock()
		t = t.Add(24*time.Hour - time.Duration(h*3600+mi*60+sec)*time.Second)
	}
	return t
}

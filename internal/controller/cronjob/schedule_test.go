package cronjob

import (
	"math/rand"
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// bits builds a bit set from values, to state expected fields plainly.
func bits(vs ...int) uint64 {
	var b uint64
	for _, v := range vs {
		b |= 1 << uint(v)
	}
	return b
}

func span(lo, hi, step int) uint64 {
	var b uint64
	for v := lo; v <= hi; v += step {
		b |= 1 << uint(v)
	}
	return b
}

func TestParseScheduleFields(t *testing.T) {
	all := func(f fieldRange) uint64 { return span(f.min, f.max, 1) }
	tests := []struct {
		spec string
		want Schedule
	}{
		{"* * * * *", Schedule{minute: all(minuteField), hour: all(hourField), dom: all(domField), month: all(monthField), dow: all(dowField), domAny: true, dowAny: true}},
		{"*/15 0-6/2 1,15 * ?", Schedule{minute: bits(0, 15, 30, 45), hour: bits(0, 2, 4, 6), dom: bits(1, 15), month: all(monthField), dow: all(dowField), dowAny: true}},
		{"5/20 12 * jan-mar,DEC mon-fri", Schedule{minute: bits(5, 25, 45), hour: bits(12), dom: all(domField), month: bits(1, 2, 3, 12), dow: span(1, 5, 1), domAny: true}},
		// A stepped star restricts the field; a star stepped by 1 does not.
		{"0 0 */2 * */1", Schedule{minute: bits(0), hour: bits(0), dom: span(1, 31, 2), month: all(monthField), dow: all(dowField), dowAny: true}},
		{"0 0 1 * SUN,sat", Schedule{minute: bits(0), hour: bits(0), dom: bits(1), month: all(monthField), dow: bits(0, 6)}},
		{"  59 23 31 12 6  ", Schedule{minute: bits(59), hour: bits(23), dom: bits(31), month: bits(12), dow: bits(6)}},
		// Upstream's parser reads "*-5" as "*"; validation accepts it.
		{"*-5 * * * *", Schedule{minute: all(minuteField), hour: all(hourField), dom: all(domField), month: all(monthField), dow: all(dowField), domAny: true, dowAny: true}},
		{"@yearly", Schedule{minute: bits(0), hour: bits(0), dom: bits(1), month: bits(1), dow: all(dowField), dowAny: true}},
		{"@annually", Schedule{minute: bits(0), hour: bits(0), dom: bits(1), month: bits(1), dow: all(dowField), dowAny: true}},
		{"@monthly", Schedule{minute: bits(0), hour: bits(0), dom: bits(1), month: all(monthField), dow: all(dowField), dowAny: true}},
		{"@weekly", Schedule{minute: bits(0), hour: bits(0), dom: all(domField), month: all(monthField), dow: bits(0), domAny: true}},
		{"@daily", Schedule{minute: bits(0), hour: bits(0), dom: all(domField), month: all(monthField), dow: all(dowField), domAny: true, dowAny: true}},
		{"@midnight", Schedule{minute: bits(0), hour: bits(0), dom: all(domField), month: all(monthField), dow: all(dowField), domAny: true, dowAny: true}},
		{"@hourly", Schedule{minute: bits(0), hour: all(hourField), dom: all(domField), month: all(monthField), dow: all(dowField), domAny: true, dowAny: true}},
		{"@every 90s", Schedule{every: 90 * time.Second}},
		{"@every 1500ms", Schedule{every: time.Second}},
		{"@every 10ms", Schedule{every: time.Second}},
	}
	for _, tt := range tests {
		got, err := ParseSchedule(tt.spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tt.spec, err)
			continue
		}
		if *got != tt.want {
			t.Errorf("ParseSchedule(%q) = %+v, want %+v", tt.spec, *got, tt.want)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"", "empty spec string"},
		{"   ", "empty spec string"},
		{"* * * *", "expected exactly 5 fields, found 4: [* * * *]"},
		{"0 * * * * *", "expected exactly 5 fields, found 6"},
		{"60 * * * *", "end of range (60) above maximum (59): 60"},
		{"* 24 * * *", "end of range (24) above maximum (23): 24"},
		{"* * 0 * *", "beginning of range (0) below minimum (1): 0"},
		{"* * 32 * *", "end of range (32) above maximum (31): 32"},
		{"* * * 13 *", "end of range (13) above maximum (12): 13"},
		{"* * * * 7", "end of range (7) above maximum (6): 7"},
		{"5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"},
		{"1-2-3 * * * *", "too many hyphens: 1-2-3"},
		{"*/2/3 * * * *", "too many slashes: */2/3"},
		{"*/0 * * * *", "step of range should be a positive number: */0"},
		{"*/x * * * *", "failed to parse int from x"},
		{"a * * * *", "failed to parse int from a"},
		{"* * * foo *", "failed to parse int from foo"},
		{"* * * * mon-funday", "failed to parse int from funday"},
		{"-1 * * * *", "failed to parse int from "},
		{"@fortnightly", "unrecognized descriptor: @fortnightly"},
		{"@Hourly", "unrecognized descriptor: @Hourly"},
		{"@every 1 hour", "failed to parse duration @every 1 hour"},
		{"TZ=Mars/Olympus * * * * *", "provided bad location Mars/Olympus"},
	}
	for _, tt := range tests {
		_, err := ParseSchedule(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSchedule(%q) error = %v, want it to contain %q", tt.spec, err, tt.want)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	havana := mustLoad(t, "America/Havana")
	berlin := mustLoad(t, "Europe/Berlin")
	lordHowe := mustLoad(t, "Australia/Lord_Howe")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, spec string
		loc        *time.Location // the schedule's zone; nil reads t's
		from       time.Time
		want       []time.Time // successive activations
	}{
		{"every minute is strictly after", "* * * * *", nil, utc("2025-01-01T10:00:00Z"),
			[]time.Time{utc("2025-01-01T10:01:00Z"), utc("2025-01-01T10:02:00Z")}},
		{"sub-second input", "*/1 * * * *", nil, utc("2025-01-01T10:00:59.999Z"),
			[]time.Time{utc("2025-01-01T10:01:00Z")}},
		{"every 15 minutes rolls the hour", "*/15 * * * *", nil, utc("2025-01-01T23:50:00Z"),
			[]time.Time{utc("2025-01-02T00:00:00Z"), utc("2025-01-02T00:15:00Z")}},
		{"hour and minute lists", "0,30 9,17 * * *", nil, utc("2025-01-01T09:30:00Z"),
			[]time.Time{utc("2025-01-01T17:00:00Z"), utc("2025-01-01T17:30:00Z"), utc("2025-01-02T09:00:00Z")}},
		{"weekdays by name", "0 9 * * MON-FRI", nil, utc("2025-01-03T09:00:00Z"), // a Friday
			[]time.Time{utc("2025-01-06T09:00:00Z"), utc("2025-01-07T09:00:00Z")}},
		{"day of month or day of week", "0 0 13 * 5", nil, utc("2025-06-01T00:00:00Z"),
			// Fridays and the 13th, whichever comes first.
			[]time.Time{utc("2025-06-06T00:00:00Z"), utc("2025-06-13T00:00:00Z"), utc("2025-06-20T00:00:00Z")}},
		{"day of month and any weekday", "0 0 13 * ?", nil, utc("2025-06-01T00:00:00Z"),
			[]time.Time{utc("2025-06-13T00:00:00Z"), utc("2025-07-13T00:00:00Z")}},
		{"stepped weekday restricts", "0 0 13 * */2", nil, utc("2025-06-01T00:00:00Z"),
			// */2 on weekdays is Sun, Tue, Thu, Sat, ORed with the 13th (a Friday).
			[]time.Time{utc("2025-06-03T00:00:00Z"), utc("2025-06-05T00:00:00Z"), utc("2025-06-07T00:00:00Z"), utc("2025-06-08T00:00:00Z"), utc("2025-06-10T00:00:00Z"), utc("2025-06-12T00:00:00Z"), utc("2025-06-13T00:00:00Z")}},
		{"31st skips short months", "0 12 31 * *", nil, utc("2025-04-01T00:00:00Z"),
			[]time.Time{utc("2025-05-31T12:00:00Z"), utc("2025-07-31T12:00:00Z"), utc("2025-08-31T12:00:00Z"), utc("2025-10-31T12:00:00Z")}},
		{"leap day", "0 0 29 feb *", nil, utc("2025-01-01T00:00:00Z"),
			[]time.Time{utc("2028-02-29T00:00:00Z"), utc("2032-02-29T00:00:00Z")}},
		{"never", "0 0 30 2 *", nil, utc("2025-01-01T00:00:00Z"), []time.Time{{}}},
		{"yearly", "@yearly", nil, utc("2025-06-01T00:00:00Z"), []time.Time{utc("2026-01-01T00:00:00Z")}},
		{"weekly is Sunday midnight", "@weekly", nil, utc("2025-06-01T00:00:00Z"), // a Sunday
			[]time.Time{utc("2025-06-08T00:00:00Z")}},
		{"monthly", "@monthly", nil, utc("2025-12-15T00:00:00Z"), []time.Time{utc("2026-01-01T00:00:00Z")}},
		{"every", "@every 90s", nil, utc("2025-01-01T10:00:00.5Z"),
			[]time.Time{utc("2025-01-01T10:01:30Z"), utc("2025-01-01T10:03:00Z")}},
		{"time zone", "0 9 * * *", berlin, utc("2025-01-01T07:59:00Z"),
			[]time.Time{utc("2025-01-01T08:00:00Z"), utc("2025-01-02T08:00:00Z")}},
		{"TZ prefix", "TZ=Europe/Berlin 0 9 * * *", nil, utc("2025-07-01T06:00:00Z"),
			[]time.Time{utc("2025-07-01T07:00:00Z")}},
		{"CRON_TZ prefix wins over In", "CRON_TZ=Asia/Tokyo 0 9 * * *", berlin, utc("2025-07-01T00:00:00Z"),
			[]time.Time{utc("2025-07-02T00:00:00Z")}},
		// New York springs forward 2025-03-09 02:00 EST -> 03:00 EDT.
		{"DST: skipped wall time does not fire", "30 2 * * *", ny, utc("2025-03-08T00:00:00Z"),
			[]time.Time{utc("2025-03-08T07:30:00Z"), utc("2025-03-10T06:30:00Z")}},
		{"DST: hourly across spring forward", "0 * * * *", ny, utc("2025-03-09T05:30:00Z"),
			[]time.Time{utc("2025-03-09T06:00:00Z"), utc("2025-03-09T07:00:00Z"), utc("2025-03-09T08:00:00Z")}},
		{"DST: 03:00 on the day of the jump", "0 3 * * *", ny, utc("2025-03-09T05:00:00Z"),
			[]time.Time{utc("2025-03-09T07:00:00Z"), utc("2025-03-10T07:00:00Z")}},
		// New York falls back 2025-11-02 02:00 EDT -> 01:00 EST.
		{"DST: repeated wall time fires twice", "30 1 * * *", ny, utc("2025-11-02T04:00:00Z"),
			[]time.Time{utc("2025-11-02T05:30:00Z"), utc("2025-11-02T06:30:00Z"), utc("2025-11-03T06:30:00Z")}},
		{"DST: daily at 9 keeps local time", "0 9 * * *", ny, utc("2025-11-01T12:00:00Z"),
			[]time.Time{utc("2025-11-01T13:00:00Z"), utc("2025-11-02T14:00:00Z"), utc("2025-11-03T14:00:00Z")}},
		// Havana skips midnight 2025-03-09 (00:00 CST -> 01:00 CDT).
		{"DST: midnight that does not exist", "0 0 * * *", havana, utc("2025-03-08T12:00:00Z"),
			[]time.Time{utc("2025-03-10T04:00:00Z")}},
		{"DST: first minute of a day without midnight", "* * 9 3 *", havana, utc("2025-03-08T12:00:00Z"),
			[]time.Time{utc("2025-03-09T05:00:00Z"), utc("2025-03-09T05:01:00Z")}},
		// Lord Howe moves by half an hour: 2025-10-05 02:00 -> 02:30.
		{"DST: half-hour jump", "15 2 * * *", lordHowe, utc("2025-10-04T12:00:00Z"),
			[]time.Time{utc("2025-10-05T15:15:00Z")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSchedule(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if tt.loc != nil {
				s = s.In(tt.loc)
			}
			cur := tt.from
			for i, want := range tt.want {
				got := s.Next(cur)
				if !got.Equal(want) {
					t.Fatalf("activation %d after %s = %s, want %s", i, cur.UTC(), got.UTC(), want.UTC())
				}
				if !want.IsZero() && got.Location() != tt.from.Location() {
					t.Errorf("Next returned location %v, want the input's %v", got.Location(), tt.from.Location())
				}
				cur = got
			}
		})
	}
}

func TestSchedulePrev(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	tests := []struct {
		spec     string
		loc      *time.Location
		at, want time.Time
	}{
		{"*/15 * * * *", time.UTC, time.Date(2025, 1, 1, 10, 14, 59, 0, time.UTC), time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)},
		{"*/15 * * * *", time.UTC, time.Date(2025, 1, 1, 10, 15, 0, 0, time.UTC), time.Date(2025, 1, 1, 10, 15, 0, 0, time.UTC)},
		{"0 0 1 1 *", time.UTC, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"0 12 31 * *", time.UTC, time.Date(2025, 7, 30, 0, 0, 0, 0, time.UTC), time.Date(2025, 5, 31, 12, 0, 0, 0, time.UTC)},
		{"30 2 * * *", ny, time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 8, 7, 30, 0, 0, time.UTC)},
		{"30 1 * * *", ny, time.Date(2025, 11, 2, 7, 0, 0, 0, time.UTC), time.Date(2025, 11, 2, 6, 30, 0, 0, time.UTC)},
		{"0 0 30 2 *", time.UTC, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}},
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.In(tt.loc).Prev(tt.at); !got.Equal(tt.want) {
			t.Errorf("%q Prev(%s) = %s, want %s", tt.spec, tt.at, got.UTC(), tt.want.UTC())
		}
	}
	if every, _ := ParseSchedule("@every 1m"); !every.Prev(time.Now()).IsZero() {
		t.Error("an @every schedule has no fixed previous activation")
	}
}

// TestScheduleAgainstBruteForce checks Next and Prev against the
// definition — the nearest whole minute whose local wall clock matches —
// by scanning minute by minute, in zones with every kind of DST jump.
func TestScheduleAgainstBruteForce(t *testing.T) {
	zones := []string{"UTC", "America/New_York", "Europe/Berlin", "America/Havana", "America/Santiago", "Asia/Beirut", "Australia/Lord_Howe", "Asia/Kolkata"}
	fieldChoices := [][]string{
		{"*", "*/15", "0", "30", "5,35", "0-10/5", "59"},
		{"*", "0", "1", "2", "23", "1-3", "0,12", "*/6"},
		{"*", "1", "9", "15", "31", "1-7", "?", "*/10"},
		{"*", "3", "10", "*/2", "mar,nov", "sep-oct"},
		{"*", "0", "1-5", "sun", "?", "6"},
	}
	// Instants near each zone's transitions, and some anywhere.
	anchors := []time.Time{
		time.Date(2025, 3, 8, 20, 0, 0, 0, time.UTC), time.Date(2025, 3, 9, 3, 0, 0, 0, time.UTC),
		time.Date(2025, 3, 29, 20, 0, 0, 0, time.UTC), time.Date(2025, 4, 5, 23, 0, 0, 0, time.UTC),
		time.Date(2025, 9, 6, 23, 0, 0, 0, time.UTC), time.Date(2025, 10, 4, 14, 0, 0, 0, time.UTC),
		time.Date(2025, 10, 25, 20, 0, 0, 0, time.UTC), time.Date(2025, 11, 2, 4, 0, 0, 0, time.UTC),
	}
	rng := rand.New(rand.NewSource(1))
	const horizon = 40 * 24 * 60 // minutes the brute force scans
	for i := 0; i < 250; i++ {
		var fields []string
		for _, c := range fieldChoices {
			fields = append(fields, c[rng.Intn(len(c))])
		}
		spec := strings.Join(fields, " ")
		loc := mustLoad(t, zones[rng.Intn(len(zones))])
		at := anchors[rng.Intn(len(anchors))].Add(time.Duration(rng.Intn(48*3600)-24*3600) * time.Second)
		s, err := ParseSchedule(spec)
		if err != nil {
			t.Fatal(err)
		}
		s = s.In(loc)
		matches := func(c time.Time) bool {
			l := c.In(loc)
			return has(s.month, int(l.Month())) && s.dayMatches(l) && has(s.hour, l.Hour()) && has(s.minute, l.Minute())
		}

		want := time.Time{}
		for c, n := at.Truncate(time.Minute).Add(time.Minute), 0; n < horizon; c, n = c.Add(time.Minute), n+1 {
			if matches(c) {
				want = c
				break
			}
		}
		got := s.Next(at)
		if want.IsZero() {
			if !got.IsZero() && got.Sub(at) < horizon*time.Minute {
				t.Errorf("%q in %v: Next(%s) = %s, but nothing matches in between", spec, loc, at, got.In(loc))
			}
		} else if !got.Equal(want) {
			t.Errorf("%q in %v: Next(%s) = %s, want %s", spec, loc, at.In(loc), got.In(loc), want.In(loc))
		}

		want = time.Time{}
		for c, n := at.Truncate(time.Minute), 0; n < horizon; c, n = c.Add(-time.Minute), n+1 {
			if matches(c) {
				want = c
				break
			}
		}
		got = s.Prev(at)
		if want.IsZero() {
			if !got.IsZero() && at.Sub(got) < horizon*time.Minute {
				t.Errorf("%q in %v: Prev(%s) = %s, but nothing matches in between", spec, loc, at, got.In(loc))
			}
		} else if !got.Equal(want) {
			t.Errorf("%q in %v: Prev(%s) = %s, want %s", spec, loc, at.In(loc), got.In(loc), want.In(loc))
		}
	}
}

func TestDayStart(t *testing.T) {
	havana := mustLoad(t, "America/Havana")
	tests := []struct {
		y    int
		m    time.Month
		d    int
		loc  *time.Location
		want time.Time
	}{
		{2025, 3, 9, havana, time.Date(2025, 3, 9, 5, 0, 0, 0, time.UTC)}, // 01:00 CDT: midnight was skipped
		{2025, 3, 10, havana, time.Date(2025, 3, 10, 4, 0, 0, 0, time.UTC)},
		{2025, 11, 2, havana, time.Date(2025, 11, 2, 4, 0, 0, 0, time.UTC)}, // the first of two midnights
		{2025, 12, 32, time.UTC, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := dayStart(tt.y, tt.m, tt.d, tt.loc); !got.Equal(tt.want) {
			t.Errorf("dayStart(%d-%d-%d, %v) = %s, want %s", tt.y, tt.m, tt.d, tt.loc, got.UTC(), tt.want)
		}
	}
}

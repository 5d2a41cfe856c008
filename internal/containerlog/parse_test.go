package containerlog

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	zoned := time.Date(2024, 5, 6, 9, 8, 9, 500000000, time.FixedZone("", 2*3600))
	tests := []struct {
		name    string
		line    string
		want    Entry
		wantErr bool
	}{
		{"full stdout", "2024-05-06T07:08:09.123456789Z stdout F hello world\n",
			Entry{Time: ts, Stream: Stdout, Content: []byte("hello world")}, false},
		{"no newline", "2024-05-06T07:08:09.123456789Z stderr F oops",
			Entry{Time: ts, Stream: Stderr, Content: []byte("oops")}, false},
		{"partial", "2024-05-06T07:08:09.123456789Z stdout P first half\n",
			Entry{Time: ts, Stream: Stdout, Partial: true, Content: []byte("first half")}, false},
		{"crlf", "2024-05-06T07:08:09.123456789Z stdout F windows\r\n",
			Entry{Time: ts, Stream: Stdout, Content: []byte("windows")}, false},
		{"content keeps spaces", "2024-05-06T07:08:09.123456789Z stdout F  a  b \n",
			Entry{Time: ts, Stream: Stdout, Content: []byte(" a  b ")}, false},
		{"empty content", "2024-05-06T07:08:09.123456789Z stdout F \n",
			Entry{Time: ts, Stream: Stdout, Content: []byte("")}, false},
		{"empty content without space", "2024-05-06T07:08:09.123456789Z stdout F",
			Entry{Time: ts, Stream: Stdout}, false},
		{"extra tags", "2024-05-06T07:08:09.123456789Z stdout P:x:y part\n",
			Entry{Time: ts, Stream: Stdout, Partial: true, Content: []byte("part")}, false},
		{"zone offset", "2024-05-06T09:08:09.5+02:00 stdout F z\n",
			Entry{Time: zoned, Stream: Stdout, Content: []byte("z")}, false},
		{"empty", "", Entry{}, true},
		{"only newline", "\n", Entry{}, true},
		{"only timestamp", "2024-05-06T07:08:09.123456789Z\n", Entry{}, true},
		{"missing tag", "2024-05-06T07:08:09.123456789Z stdout\n", Entry{}, true},
		{"bad timestamp", "yesterday stdout F hi\n", Entry{}, true},
		{"bad stream", "2024-05-06T07:08:09.123456789Z stdin F hi\n", Entry{}, true},
		{"bad tag", "2024-05-06T07:08:09.123456789Z stdout X hi\n", Entry{}, true},
		{"docker json", `{"log":"hi\n","stream":"stdout","time":"2024-05-06T07:08:09Z"}`, Entry{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.line))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Parse() error = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if !got.Time.Equal(tt.want.Time) || got.Stream != tt.want.Stream ||
				got.Partial != tt.want.Partial || string(got.Content) != string(tt.want.Content) {
				t.Errorf("Parse() = %+v (content %q), want %+v (content %q)", got, got.Content, tt.want, tt.want.Content)
			}
		})
	}
}

package config

import (
	"math"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1", 1},
		{"1048576", 1 << 20},
		{"007", 7},
		{"1B", 1},
		{"1b", 1},
		{"64k", 64 << 10},
		{"64K", 64 << 10},
		{"64KB", 64 << 10},
		{"64Ki", 64 << 10},
		{"64KiB", 64 << 10},
		{"64kib", 64 << 10},
		{"512M", 512 << 20},
		{"512m", 512 << 20},
		{"512MB", 512 << 20},
		{"512MiB", 512 << 20},
		{"512mi", 512 << 20},
		{"1G", 1 << 30},
		{"1g", 1 << 30},
		{"1GiB", 1 << 30},
		{"64G", 64 << 30},
		{"1T", 1 << 40},
		{"2TiB", 2 << 40},
		{"1.5G", 3 << 29},
		{"0.5K", 512},
		{"0.25M", 256 << 10},
		{"1.000000000G", 1 << 30},
		{"9223372036854775807", math.MaxInt64},
		{"9223372036854775807B", math.MaxInt64},
		{"8388607T", 8388607 << 40},
		{"9007199254740991.5K", math.MaxInt64 - 511},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSizeErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "empty"},
		{"-1", "negative"},
		{"-1G", "negative"},
		{"+1", "does not start with a digit"},
		{" 1G", "does not start with a digit"},
		{"G", "does not start with a digit"},
		{"12Q", `unknown suffix "Q"`},
		{"1 G", `unknown suffix " G"`},
		{"1G ", `unknown suffix "G "`},
		{"1KK", `unknown suffix "KK"`},
		{"1P", `unknown suffix "P"`},
		{"1e3", `unknown suffix "e3"`},
		{"0x10", `unknown suffix "x10"`},
		{"1_000", `unknown suffix "_000"`},
		{"1,5G", `unknown suffix ",5G"`},
		{"1.", "malformed number"},
		{".5", "malformed number"},
		{"1..5", "malformed number"},
		{"1.2.3", "malformed number"},
		{"0.1K", "not a whole number of bytes"},
		{"1.5", "not a whole number of bytes"},
		{"0.000000001G", "not a whole number of bytes"},
		{"1.0000000001G", "more than 9 digits"},
		{"9223372036854775808", "too large"},
		{"99999999999999999999", "too large"},
		{"9223372036854775807K", "too large"},
		{"8388608T", "too large"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if err == nil {
			t.Errorf("ParseSize(%q) = %d, nil; want error containing %q", tt.in, got, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "not a size") {
			t.Errorf("ParseSize(%q) error = %q; want it to start with \"not a size\" and contain %q", tt.in, err, tt.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 1: "1", 1536: "1536", 1 << 10: "1K", 64 << 20: "64M",
		512 << 20: "512M", 1 << 30: "1G", 64 << 30: "64G", 3 << 40: "3T",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseSize(formatSize(n)); err != nil || back != n {
			t.Errorf("ParseSize(formatSize(%d)) = %d, %v", n, back, err)
		}
	}
}

package config

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// sizeSuffixes maps a lower-cased size suffix to its multiplier. Every
// multiple is binary (1K = 1024): "K", "Ki", "KiB" and "KB" all mean KiB,
// the way docker reads memory limits. Decimal (SI) sizes are not offered,
// so "512MB" and "512MiB" are the same number and nobody has to guess.
var sizeSuffixes = map[string]uint64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "ti": 1 << 40, "tib": 1 << 40,
}

// maxFractionDigits bounds the digits after a decimal point in a size.
const maxFractionDigits = 9

// ParseSize reads a byte count.
//
// The grammar is DIGITS [ "." DIGITS ] [ SUFFIX ], with no sign, spaces or
// underscores. SUFFIX is case-insensitive and one of B, K, M, G, T, each
// optionally followed by "i", "iB" or "B" (so "64k", "512M", "512MiB",
// "512mb" and "1G" are accepted). All multiples are binary: 1K = 1024 and
// "MB" means MiB, never 10^6.
//
// A fraction is accepted when it comes to a whole number of bytes
// ("1.5G" = 1610612736, "0.5K" = 512); "0.1K" (102.4 bytes) and "1.5" are
// rejected. Negative values and values that do not fit in an int64 are
// rejected.
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("not a size: empty")
	}
	if s[0] == '-' {
		return 0, errors.New("not a size: negative")
	}
	i := 0
	for i < len(s) && (isDigit(s[i]) || s[i] == '.') {
		i++
	}
	num, suffix := s[:i], s[i:]
	if num == "" {
		return 0, errors.New("not a size: does not start with a digit")
	}
	mult, ok := sizeSuffixes[strings.ToLower(suffix)]
	if !ok {
		return 0, fmt.Errorf("not a size: unknown suffix %q", suffix)
	}
	intPart, frac, hasDot := strings.Cut(num, ".")
	if intPart == "" || (hasDot && frac == "") || strings.Contains(frac, ".") {
		return 0, fmt.Errorf("not a size: malformed number %q", num)
	}
	if len(frac) > maxFractionDigits {
		return 0, fmt.Errorf("not a size: more than %d digits after the decimal point", maxFractionDigits)
	}
	whole, err := strconv.ParseUint(intPart, 10, 64)
	if err != nil || whole > math.MaxInt64/mult {
		return 0, errors.New("not a size: too large")
	}
	total := whole * mult
	if frac != "" {
		f, _ := strconv.ParseUint(frac, 10, 64) // at most 9 digits: cannot fail
		den := uint64(1)
		for range len(frac) {
			den *= 10
		}
		// f < den, so f*mult/den < mult and the 128-bit quotient fits.
		hi, lo := bits.Mul64(f, mult)
		q, r := bits.Div64(hi, lo, den)
		if r != 0 {
			return 0, fmt.Errorf("not a size: %s is not a whole number of bytes", s)
		}
		if total > math.MaxInt64-q {
			return 0, errors.New("not a size: too large")
		}
		total += q
	}
	return int64(total), nil
}

// formatSize renders n with the largest binary suffix that divides it
// exactly, for messages and documentation ("64M", "1G", "1536").
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

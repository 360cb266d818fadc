package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

// sample is a set of timings of one variant.
type sample struct {
	name string
	d    []time.Duration
}

// quantile returns the q-quantile (0..1) by the nearest-rank method.
func (s *sample) quantile(q float64) time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	sorted := slices.Clone(s.d)
	slices.Sort(sorted)
	i := int(q*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// printTable writes one row per variant with median, p90, p99 and the ratio of
// its median (and p90) to the baseline's.
func printTable(w io.Writer, base *sample, rows ...*sample) {
	fmt.Fprintf(w, "%-34s %5s %9s %9s %9s %9s %9s\n", "variant", "n", "p50 ms", "p90 ms", "p99 ms", "p50/base", "p90/base")
	for _, s := range append([]*sample{base}, rows...) {
		fmt.Fprintf(w, "%-34s %5d %9.2f %9.2f %9.2f %9.2f %9.2f\n", s.name, len(s.d),
			ms(s.quantile(0.5)), ms(s.quantile(0.9)), ms(s.quantile(0.99)),
			float64(s.quantile(0.5))/float64(base.quantile(0.5)),
			float64(s.quantile(0.9))/float64(base.quantile(0.9)))
	}
}

// envInt returns the positive integer in the environment variable name, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// timedHello runs cmd and times it; it must print exactly "hello\n".
func timedHello(cmd *exec.Cmd) (time.Duration, error) {
	t0 := time.Now()
	out, err := cmd.Output()
	d := time.Since(t0)
	if err == nil && string(out) != "hello\n" {
		err = fmt.Errorf("%s printed %q", cmd.Path, out)
	}
	return d, err
}

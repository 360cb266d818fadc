package metrics

import (
	"fmt"
	"io"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Series are the values of a text exposition (what /metrics serves), by series:
// `name{label="value",...}` with the labels sorted by name (just `name` without labels). A
// histogram gives name_count and name_sum. It is for tests and tools that read /metrics.
type Series map[string]float64

// ParseText reads Prometheus' text exposition format with its own parser (expfmt).
func ParseText(r io.Reader) (Series, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse the text exposition: %w", err)
	}
	out := Series{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := func(suffix string) string { return name + suffix + labelString(m.GetLabel()) }
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key("_count")] = float64(m.GetHistogram().GetSampleCount())
				out[key("_sum")] = m.GetHistogram().GetSampleSum()
			case dto.MetricType_UNTYPED:
				out[key("")] = m.GetUntyped().GetValue()
			}
		}
	}
	return out, nil
}

// Sum adds the values of the series named name (without labels) whose labels include every
// one of match (label=value pairs).
func (s Series) Sum(name string, match ...string) float64 {
	var total float64
	for k, v := range s {
		n, labels, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		ok := true
		for _, lv := range match {
			l, val, _ := strings.Cut(lv, "=")
			pair := fmt.Sprintf("%s=%q", l, val)
			if !strings.Contains("{"+labels, "{"+pair) && !strings.Contains(labels, ","+pair) {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

func labelString(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

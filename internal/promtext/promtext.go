// Package promtext parses a /metrics page by the rules of the Prometheus
// text exposition format (version 0.0.4) and the stricter ones ringmq
// holds itself to: every family has a # HELP with text and a # TYPE, no
// untyped series, counters end in _total, and every histogram has
// cumulative le buckets ending in +Inf that equal its _count, and a _sum.
// Tests use it to check a running server's exposition; it has no state.
package promtext

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Family is one metric family of an exposition.
type Family struct {
	Name    string
	Type    string // counter, gauge, histogram or summary
	Help    string
	Samples []Sample
}

// Sample is one series line.
type Sample struct {
	Name   string            // the family name, or it plus _bucket, _sum, _count
	Labels map[string]string // le and quantile included
	Value  float64
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Parse checks text and returns its families by name. The error lists
// every broken rule found, one per line, each naming the line number.
func Parse(text string) (map[string]*Family, error) {
	p := parser{families: map[string]*Family{}, seen: map[string]bool{}}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		p.line(i+1, line)
	}
	for _, f := range p.families {
		p.checkFamily(f)
	}
	return p.families, errors.Join(p.errs...)
}

type parser struct {
	families map[string]*Family
	current  string          // family of the lines being read
	done     map[string]bool // families whose lines ended (must not come back)
	seen     map[string]bool // series already read (name + labels)
	errs     []error
}

func (p *parser) fail(n int, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("line %d: "+format, append([]any{n}, args...)...))
}

func (p *parser) line(n int, line string) {
	switch {
	case line == "":
		p.fail(n, "empty line")
	case strings.HasPrefix(line, "# HELP "), strings.HasPrefix(line, "# TYPE "):
		p.meta(n, line)
	case strings.HasPrefix(line, "#"):
		// a comment
	default:
		p.sample(n, line)
	}
}

func (p *parser) enter(n int, family string) *Family {
	if family != p.current {
		if p.done == nil {
			p.done = map[string]bool{}
		}
		if p.done[family] {
			p.fail(n, "lines of family %s are not together", family)
		}
		if p.current != "" {
			p.done[p.current] = true
		}
		p.current = family
	}
	f := p.families[family]
	if f == nil {
		f = &Family{Name: family}
		p.families[family] = f
	}
	return f
}

func (p *parser) meta(n int, line string) {
	kind, rest := line[2:6], line[7:]
	name, text, _ := strings.Cut(rest, " ")
	if !metricName.MatchString(name) {
		p.fail(n, "bad metric name %q", name)
		return
	}
	f := p.enter(n, name)
	if len(f.Samples) > 0 {
		p.fail(n, "# %s of %s after its samples", kind, name)
	}
	switch kind {
	case "HELP":
		if f.Help != "" {
			p.fail(n, "second # HELP for %s", name)
		}
		if strings.TrimSpace(text) == "" {
			p.fail(n, "# HELP of %s has no text", name)
		}
		f.Help = text
	case "TYPE":
		if f.Type != "" {
			p.fail(n, "second # TYPE for %s", name)
		}
		switch text {
		case "counter", "gauge", "histogram", "summary":
		default:
			p.fail(n, "# TYPE of %s is %q", name, text)
		}
		f.Type = text
	}
}

func (p *parser) sample(n int, line string) {
	name, labels, value, err := splitSample(line)
	if err != nil {
		p.fail(n, "%v: %q", err, line)
		return
	}
	key := name + "{" + canonical(labels) + "}"
	if p.seen[key] {
		p.fail(n, "duplicate series %s", key)
	}
	p.seen[key] = true
	family := name
	if f := p.families[p.current]; f != nil && (f.Type == "histogram" || f.Type == "summary") {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if name == p.current+suffix {
				family = p.current
			}
		}
	}
	f := p.enter(n, family)
	if f.Type == "" || f.Help == "" {
		p.fail(n, "series %s has no # TYPE or # HELP before it", name)
	}
	f.Samples = append(f.Samples, Sample{Name: name, Labels: labels, Value: value})
}

// splitSample parses `name{a="b",...} value [timestamp]`.
func splitSample(line string) (string, map[string]string, float64, error) {
	end := strings.IndexAny(line, "{ ")
	if end < 0 {
		return "", nil, 0, errors.New("no value")
	}
	name, rest := line[:end], line[end:]
	if !metricName.MatchString(name) {
		return "", nil, 0, fmt.Errorf("bad metric name %q", name)
	}
	labels := map[string]string{}
	if rest[0] == '{' {
		var err error
		if rest, err = parseLabels(rest[1:], labels); err != nil {
			return "", nil, 0, err
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 || !strings.HasPrefix(rest, " ") {
		return "", nil, 0, errors.New("want one value and an optional timestamp")
	}
	v, err := parseValue(fields[0])
	if err != nil {
		return "", nil, 0, err
	}
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return "", nil, 0, fmt.Errorf("bad timestamp %q", fields[1])
		}
	}
	return name, labels, v, nil
}

// parseLabels reads `a="b",c="d"}` into labels and returns what follows.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.Index(s, `="`)
		if eq < 0 {
			return "", errors.New("bad label")
		}
		name := s[:eq]
		if !labelName.MatchString(name) {
			return "", fmt.Errorf("bad label name %q", name)
		}
		if _, dup := labels[name]; dup {
			return "", fmt.Errorf("label %s twice", name)
		}
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\n' {
				return "", errors.New("raw line feed in a label value")
			}
			if s[i] != '\\' {
				val.WriteByte(s[i])
				continue
			}
			i++
			if i == len(s) {
				return "", errors.New("unterminated label value")
			}
			switch s[i] {
			case '\\', '"':
				val.WriteByte(s[i])
			case 'n':
				val.WriteByte('\n')
			default:
				return "", fmt.Errorf(`bad escape \%c in a label value`, s[i])
			}
		}
		if i == len(s) {
			return "", errors.New("unterminated label value")
		}
		labels[name] = val.String()
		s = s[i+1:]
		if strings.HasPrefix(s, ",") {
			s = s[1:]
		} else if !strings.HasPrefix(s, "}") {
			return "", errors.New("want , or } after a label")
		}
	}
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || strings.ContainsAny(s, "xXpP_") {
		return 0, fmt.Errorf("bad value %q", s)
	}
	return v, nil
}

// canonical formats labels sorted by name, leaving out the ones named.
func canonical(labels map[string]string, without ...string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		if k == "" || contains(without, k) {
			continue
		}
		fmt.Fprintf(&b, "%s=%q,", k, labels[k])
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkFamily applies the per-type rules.
func (p *parser) checkFamily(f *Family) {
	switch f.Type {
	case "counter":
		if !strings.HasSuffix(f.Name, "_total") {
			p.errs = append(p.errs, fmt.Errorf("counter %s does not end in _total", f.Name))
		}
		p.plain(f)
	case "gauge":
		p.plain(f)
	case "histogram":
		p.histogram(f)
	}
}

func (p *parser) plain(f *Family) {
	for _, s := range f.Samples {
		if s.Name != f.Name {
			p.errs = append(p.errs, fmt.Errorf("%s %s has a series named %s", f.Type, f.Name, s.Name))
		}
	}
}

// histogram checks each label set's buckets: le ascending, counts
// cumulative, +Inf last and equal to _count, and a _sum.
func (p *parser) histogram(f *Family) {
	type hist struct {
		les    []float64
		counts []float64
		sum    bool
		count  float64
		hasCnt bool
	}
	hs := map[string]*hist{}
	get := func(labels map[string]string) *hist {
		k := canonical(labels, "le")
		if hs[k] == nil {
			hs[k] = &hist{}
		}
		return hs[k]
	}
	for _, s := range f.Samples {
		h := get(s.Labels)
		switch s.Name {
		case f.Name + "_bucket":
			le, ok := s.Labels["le"]
			if !ok {
				p.errs = append(p.errs, fmt.Errorf("histogram %s: a bucket without le", f.Name))
				continue
			}
			v, err := parseValue(le)
			if err != nil {
				p.errs = append(p.errs, fmt.Errorf("histogram %s: le=%q", f.Name, le))
				continue
			}
			h.les = append(h.les, v)
			h.counts = append(h.counts, s.Value)
		case f.Name + "_sum":
			h.sum = true
		case f.Name + "_count":
			h.count, h.hasCnt = s.Value, true
		default:
			p.errs = append(p.errs, fmt.Errorf("histogram %s has a series named %s", f.Name, s.Name))
		}
	}
	for k, h := range hs {
		where := fmt.Sprintf("histogram %s{%s}", f.Name, k)
		if !h.sum || !h.hasCnt {
			p.errs = append(p.errs, fmt.Errorf("%s lacks _sum or _count", where))
		}
		if len(h.les) == 0 || !math.IsInf(h.les[len(h.les)-1], 1) {
			p.errs = append(p.errs, fmt.Errorf("%s: last bucket is not le=\"+Inf\"", where))
			continue
		}
		for i := 1; i < len(h.les); i++ {
			if h.les[i] <= h.les[i-1] || h.counts[i] < h.counts[i-1] {
				p.errs = append(p.errs, fmt.Errorf("%s: buckets not ascending and cumulative at le=%v", where, h.les[i]))
			}
		}
		if h.counts[len(h.counts)-1] != h.count {
			p.errs = append(p.errs, fmt.Errorf("%s: +Inf bucket %v != _count %v", where, h.counts[len(h.counts)-1], h.count))
		}
	}
}

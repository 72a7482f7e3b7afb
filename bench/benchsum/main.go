// Command benchsum reads `go test -bench` output (several -count runs) on
// standard input and prints, per benchmark, the median of every metric and
// the number of runs, then the ratios asked for with -ratio. Medians, not
// means, because this machine is shared and an outlier run is common.
//
//	go test -bench . -count 5 ./ring | go run ./bench/benchsum -ratio 'UnixSocketRoundTrip/RoundTrip/spin'
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

type ratioFlag []string

func (r *ratioFlag) String() string     { return strings.Join(*r, ",") }
func (r *ratioFlag) Set(s string) error { *r = append(*r, s); return nil }

// A result line: name, iterations, then value-unit pairs.
var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+(\d+)\s+(.*)$`)

func main() {
	var ratios ratioFlag
	flag.Var(&ratios, "ratio", "NUM/DEN: print NUM's median ns/op over DEN's (repeatable; names without the Benchmark prefix; '//' separates them when names contain '/')")
	metric := flag.String("metric", "ns/op", "the metric -ratio divides")
	flag.Parse()

	samples := map[string]map[string][]float64{} // name → unit → values
	var order []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		name := m[1]
		if samples[name] == nil {
			samples[name] = map[string][]float64{}
			order = append(order, name)
		}
		f := strings.Fields(m[4])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			samples[name][f[i+1]] = append(samples[name][f[i+1]], v)
		}
	}
	if len(order) == 0 {
		fmt.Fprintln(os.Stderr, "benchsum: no benchmark results on standard input")
		os.Exit(1)
	}
	fmt.Println("| benchmark | runs | median |")
	fmt.Println("| --- | --- | --- |")
	for _, name := range order {
		var parts []string
		runs := 0
		units := make([]string, 0, len(samples[name]))
		for u := range samples[name] {
			units = append(units, u)
		}
		slices.Sort(units)
		for _, u := range units {
			parts = append(parts, fmt.Sprintf("%s %s", format(median(samples[name][u])), u))
			runs = max(runs, len(samples[name][u]))
		}
		fmt.Printf("| %s | %d | %s |\n", name, runs, strings.Join(parts, ", "))
	}
	if len(ratios) > 0 {
		fmt.Println()
		fmt.Printf("| ratio (%s) | value |\n| --- | --- |\n", *metric)
	}
	for _, r := range ratios {
		num, den, ok := strings.Cut(r, "//")
		if !ok {
			num, den, ok = strings.Cut(r, "/")
		}
		a, b := samples[num][*metric], samples[den][*metric]
		if !ok || len(a) == 0 || len(b) == 0 {
			fmt.Fprintf(os.Stderr, "benchsum: ratio %q: no %s for both sides\n", r, *metric)
			os.Exit(1)
		}
		fmt.Printf("| %s / %s | %.2fx |\n", num, den, median(a)/median(b))
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func format(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

package config_test

import (
	"testing"

	"github.com/buildguard/buildguard/config"
)

func TestParseQuantity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want config.Quantity
		ok   bool
	}{
		{"0", 0, true},
		{"1024", 1024, true},
		{"512Mi", 512 << 20, true},
		{"4Gi", 4 << 30, true},
		{"1G", 1e9, true},
		{"1k", 1000, true},
		{"1Ki", 1024, true},
		{"1.5Gi", 3 << 29, true},
		{"0.5k", 500, true},
		{".5k", 500, true},
		{"1e3", 1000, true},
		{"1E", 1e18, true}, // exa, as in Kubernetes
		{"+1M", 1e6, true},
		{"-1Mi", -(1 << 20), true}, // parsed; Validate rejects negatives
		{"7Ei", 7 << 60, true},
		{"8Ei", 0, false}, // beyond int64
		{"0.5", 0, false}, // not whole bytes
		{"1m", 0, false},  // milli-bytes make no sense
		{"1K", 0, false},  // Kubernetes spells it k
		{"4GB", 0, false},
		{"4 Gi", 0, false},
		{"1e99", 0, false},
		{"1e-1", 0, false},
		{"", 0, false},
		{"Gi", 0, false},
		{"1/2", 0, false},
	} {
		got, err := config.ParseQuantity(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseQuantity(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestResolvePath(t *testing.T) {
	for _, tc := range []struct{ text, dir, want string }{
		{"", "/a", ""},
		{"k.pub", "/a", "/a/k.pub"},
		{"../k.pub", "/a/b", "/a/k.pub"},
		{"/etc//k.pub", "/a", "/etc/k.pub"},
	} {
		p := config.ResolvePath(tc.text, tc.dir)
		if p.Resolved != tc.want || p.Text != tc.text {
			t.Errorf("ResolvePath(%q, %q) = %+v, want %q", tc.text, tc.dir, p, tc.want)
		}
	}
}

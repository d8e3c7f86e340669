package campaigns_test

import (
	"testing"
	"time"

	"github.com/heraldmsg/herald/campaigns"
)

// TestResendAfter reads unknown.resend_after: a quiet period under at-most-once, nothing when
// absent. (Refused values are in testdata/broken/unknown-resend-*.yaml.)
func TestResendAfter(t *testing.T) {
	t.Parallel()

	const base = "id: spring-sale\ntemplate:\n  name: spring_sale\n  language: en\naudience:\n  file: a.csv\n"
	tests := []struct {
		name string
		yaml string
		want time.Duration
	}{
		{"Absent", base, 0},
		{"ThirtyMinutes", base + "unknown:\n  resend_after: 30m\n", 30 * time.Minute},
		{"ExplicitAtMostOnce", base + "delivery: at-most-once\nunknown:\n  resend_after: 1m\n", time.Minute},
		{"EmptySection", base + "unknown: {}\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := campaigns.Parse("c.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := d.ResendAfter(); got != tt.want {
				t.Fatalf("ResendAfter() = %v, want %v", got, tt.want)
			}
		})
	}
}

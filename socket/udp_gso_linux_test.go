package socket

import "testing"

// TestGSORun is the table of the GSO coalescing decision: which datagrams, of those
// queued, form one GSO message.
func TestGSORun(t *testing.T) {
	const segs, bytes = 4, 5000
	for _, c := range []struct {
		name string
		lens []int
		want int
	}{
		{"none", nil, 0},
		{"alone", []int{1000}, 1},
		{"equal", []int{1000, 1000, 1000}, 3},
		{"last shorter", []int{1000, 1000, 400}, 3},
		{"shorter ends the run", []int{1000, 400, 1000}, 2},
		{"larger stays out", []int{1000, 1000, 1200, 1000}, 2},
		{"larger second", []int{1000, 1200}, 1},
		{"empty stays out", []int{1000, 0, 1000}, 1},
		{"max segments", []int{100, 100, 100, 100, 100, 100}, 4},
		{"max bytes", []int{1500, 1500, 1500, 1500}, 3},
		{"max bytes exactly", []int{2500, 2500, 2500}, 2},
		{"a shorter last within max bytes", []int{2000, 2000, 1000}, 3},
		{"a first beyond max bytes", []int{6000, 6000}, 1},
	} {
		if got := gsoRun(c.lens, segs, bytes); got != c.want {
			t.Errorf("%s: gsoRun(%v) = %d, want %d", c.name, c.lens, got, c.want)
		}
	}
}

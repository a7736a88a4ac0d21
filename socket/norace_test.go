//go:build !race

package socket

// raceEnabled: the race detector's runtime allocates on its own; allocation counts are
// checked only without it.
const raceEnabled = false

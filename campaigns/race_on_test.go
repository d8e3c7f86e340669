//go:build race

package campaigns_test

// raceEnabled reports whether the race detector is on (its shadow memory counts in RSS).
const raceEnabled = true

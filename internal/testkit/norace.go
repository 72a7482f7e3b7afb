//go:build !race

package testkit

// RaceEnabled is true when the tests run with the race detector.
const RaceEnabled = false

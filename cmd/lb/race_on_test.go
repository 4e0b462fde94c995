//go:build race

package main

// raceEnabled: the race detector multiplies memory use, so memory limits
// in tests are relaxed.
const raceEnabled = true

//go:build race

package statefleet

// raceDetector reports whether the tests run under the race detector.
const raceDetector = true

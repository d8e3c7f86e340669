// Package layers holds the test that keeps Herald's import graph pointing one way: commands
// on top, then the packages that run campaigns, then the campaign vocabulary, then internal/.
// It has no code of its own.
package layers

package main

import (
	"flag"
	"os"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

// parallelTests is how many of the package's parallel tests run at once when -parallel is not
// given: its long integration tests mostly wait (on a killed worker's leases, on the fake's
// latency), so more of them at a time than GOMAXPROCS finish sooner; each has a database of its
// own (dbs).
const parallelTests = 4

// TestMain fails the package's tests when any goroutine outlives them: the commands start
// servers, workers, schedulers and webhook receivers that must all stop with them. It removes
// the herald binary the tests built for their child processes.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", strconv.Itoa(parallelTests)); err != nil {
			panic(err)
		}
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
		os.Exit(code)
	}))
}

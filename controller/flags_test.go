package controller

import (
	"flag"
	"time"
)

var (
	seedFlag = flag.Int64("seed", 0, "replay the randomized tests with this seed (0: a new one)")
	longFlag = flag.Bool("long", false, "run the simulated cluster for many more seeds and steps")
)

func seedOrRandom() int64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return time.Now().UnixNano()
}

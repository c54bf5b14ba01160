package routing

import "runtime"

func yield() { runtime.Gosched() }

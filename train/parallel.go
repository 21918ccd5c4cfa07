package train

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// workers is the number of goroutines kernels split their work over.
func workers() int { return max(1, runtime.GOMAXPROCS(0)) }

// parallelFor calls fn over [0, n) split into at most workers() contiguous chunks, in
// parallel when the total work (n * cost, in rough multiply-adds) is worth a goroutine.
func parallelFor(n, cost int, fn func(lo, hi int)) {
	w := workers()
	if n <= 1 || w == 1 || n*cost < 1<<15 {
		fn(0, n)
		return
	}
	w = min(w, n)
	var wg sync.WaitGroup
	chunk := (n + w - 1) / w
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	fn(0, min(chunk, n))
	wg.Wait()
}

// parallelChunks is parallelFor that also passes the chunk's index (< workers()), so
// that each chunk can own scratch buffers.
func parallelChunks(n, cost int, fn func(chunk, lo, hi int)) int {
	w := workers()
	if n <= 1 || w == 1 || n*cost < 1<<15 {
		fn(0, 0, n)
		return 1
	}
	w = min(w, n)
	chunk := (n + w - 1) / w
	var wg sync.WaitGroup
	i := 1
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			fn(c, lo, hi)
		}(i)
		i++
	}
	fn(0, 0, min(chunk, n))
	wg.Wait()
	return i
}

// parallelDynamic calls fn over [0, n) in pieces of grain indexes, which up to workers()
// goroutines take in turn until none is left, so that a goroutine slowed down (by
// another process on its core, or by a heavier piece) takes fewer. It runs serially
// when the total work (n * cost, in rough multiply-adds) is not worth a goroutine. fn
// must compute each index the same way whichever goroutine runs it, so that results
// stay deterministic.
func parallelDynamic(n, grain, cost int, fn func(lo, hi int)) {
	w := workers()
	grain = max(1, grain)
	pieces := (n + grain - 1) / grain
	if pieces <= 1 || w == 1 || n*cost < 1<<15 {
		fn(0, n)
		return
	}
	w = min(w, pieces)
	var next atomic.Int64
	run := func() {
		for {
			p := int(next.Add(1) - 1)
			if p >= pieces {
				return
			}
			fn(p*grain, min((p+1)*grain, n))
		}
	}
	var wg sync.WaitGroup
	for range w - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run()
		}()
	}
	run()
	wg.Wait()
}

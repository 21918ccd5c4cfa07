package train

import (
	"runtime"
	"sync"
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

//go:build !unix

package train

import "time"

// processCPU is not measured here: benchmarks leave their CPU-time metrics out.
func processCPU() time.Duration { return 0 }

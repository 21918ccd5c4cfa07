// Package calibrate collects activation statistics on calibration data and chooses each
// tensor's quantization range from them.
//
// # Streaming statistics
//
// A Collector folds one batch of a tensor's values at a time and keeps only O(bins)
// state, so memory does not grow with the number of samples (onnxruntime's histogram
// calibrators keep every batch's activations until the end, the cause of its
// out-of-memory reports). MinMaxCollector keeps the extremes, count, mean, standard
// deviation and an optional moving average of batch extremes; Histogram keeps 2048 bins
// (DefaultBins) on a power-of-two grid anchored at 0 that widens by whole bins, so counts
// are never split and two histograms of different batches merge exactly. NaN and ±Inf
// are counted, never folded. Set holds the collectors of many tensors for package collect, which runs the model.
//
// Every value of every exposed activation is read twice per batch: a scan (extremes,
// count, moments in 16 float64 lanes) and, for the histogram methods, the binning. Both
// run on AVX2 kernels (scan_amd64.s) where the CPU has them, with pure-Go versions that
// give bit-identical results (-tags purego selects them everywhere).
//
// # Methods
//
// MinMaxRange, PercentileRange, EntropyRange and MSERange choose a range from a
// collector; each documents its exact definition (bins, interpolation, smoothing,
// candidates). Symmetric ranges are ±max(|min|, |max|) and are computed on the |x|
// histogram; asymmetric ones on the signed histogram, except entropy, which always works
// on |x| as TensorRT's does and clamps [-t, t] to the observed extremes when asymmetric.
//
// # Table
//
// Table is the result, saved as JSON (Save is atomic; LoadTable reports a bad file as
// *CorruptTableError) and exportable as a TensorRT calibration cache. ScaleZeroPoint is
// onnxruntime's compute_scale_zp.
//
// # Differences from onnxruntime's calibrators
//
//   - Memory: one pass per batch into fixed-size state, instead of keeping all batches.
//   - Histogram growth: onnxruntime extends its first batch's grid with bins of the same
//     width; here the width doubles (by whole bins) when values fall outside the window,
//     so the resolution is between span/2048 and 2·span/2048 of the data seen.
//   - Percentile: the asymmetric range cuts 100-p percent from each tail (onnxruntime
//     cuts (100-p)/2 from each: pass p' = 100-(100-p)/2 to reproduce it), and the
//     percentile is interpolated inside its bin instead of taken as the bin's edge.
//   - Entropy: TensorRT's search (|x| histogram, 128 levels, candidates from 128 bins up,
//     threshold (i+0.5)·w) rather than onnxruntime's (signed histogram, 128 bins by
//     default, which leaves a single candidate, and integer-truncated expanded Q).
//   - Moving average: per batch, ema = c·batch + (1-c)·ema from the first batch; within
//     one collect_data call onnxruntime takes the plain mean of batch extremes and
//     applies the moving average only between CalibMaxIntermediateOutputs chunks.
//   - MSE is not an onnxruntime method. Per-channel activation ranges are not supported.
//   - Non-finite values are left out and counted; onnxruntime's ranges become NaN.
package calibrate

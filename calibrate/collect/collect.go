package collect

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/calibrate"
	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
)

// Options controls Run.
type Options struct {
	Method        calibrate.Method
	Percentile    float64
	Symmetric     bool
	MovingAverage float64
	// Tensors limits calibration to these values (empty: every float activation: the
	// graph's float inputs and every node output of float type).
	Tensors []string
	// Aliases maps values that are not measured to a measured value (in Tensors, or an
	// activation when Tensors is empty) holding exactly the same values, rearranged at
	// most (quantize.CalibrationTensors finds them): the table gives each the range of
	// its source, with TensorRange.AliasOf naming it.
	Aliases map[string]string
	// MaxPassBytes bounds the extra outputs of one inference run; when the first batch
	// shows they would pass it, the tensors are split into groups, one pass each.
	MaxPassBytes int64
	// Threads and Optimization configure the onnxruntime session.
	Threads      int
	Optimization string
	// Progress, when set, is told of the samples done out of the total (all passes).
	Progress func(done, total int)
}

// Stats is what Run measured besides the table.
type Stats struct {
	Table *calibrate.Table
	// Set holds the collectors (histograms for the histogram methods).
	Set *calibrate.Set
	// Passes is the number of passes over the dataset (1 unless the tensors were split).
	Passes int
	// PeakHeapBytes is the largest Go heap seen after folding a batch.
	PeakHeapBytes uint64
	Seconds       float64
	// NonFinite names tensors that had NaN or Inf values.
	NonFinite []string
	// NonFloat names values left out because they are not float (shapes, indices).
	NonFloat []string
}

// Run runs m over ds in onnxruntime with every calibrated tensor exposed as an output
// and folds each batch into streaming statistics at once: nothing is kept across
// batches but the collectors' state. It returns the table of ranges chosen by the method,
// stamped with m's graph hash.
func Run(ctx context.Context, m *onnxio.Model, ds *dataset.Dataset, o Options) (*Stats, error) {
	start := time.Now()
	if o.MaxPassBytes <= 0 {
		o.MaxPassBytes = 1 << 30
	}
	names, err := candidates(m, o.Tensors)
	if err != nil {
		return nil, err
	}
	if err := checkAliases(m, names, o.Aliases); err != nil {
		return nil, err
	}
	sess, float, nonFloat, err := augmentedSession(m, names, o)
	if err != nil {
		return nil, err
	}
	st := &Stats{NonFloat: nonFloat}
	if len(float) == 0 {
		sess.Close()
		return nil, fmt.Errorf("the model has no float activations to calibrate")
	}
	set := calibrate.NewSet(float, calibrate.SetOptions{Method: o.Method, Percentile: o.Percentile, Symmetric: o.Symmetric,
		MovingAverage: o.MovingAverage, Bounded: BoundedOutputs(m)})
	total := ds.Len()

	// The first batch shows how big one pass's outputs are: split when too big. When one
	// pass will do (the usual case), its session and the first batch's outputs are kept
	// for it, so calibrating costs one session and one run per batch, as inference does.
	groups := [][]string{float}
	var first map[string]*onnxio.Tensor
	firstBuf := sess.NewBuffers()
	for b, err := range ds.Batches() {
		if err == nil {
			err = dataset.CheckFinite(b)
		}
		if err != nil {
			firstBuf.Release()
			sess.Close()
			return nil, err
		}
		out, err := runBatch(sess, firstBuf, b, float)
		if err != nil {
			firstBuf.Release()
			sess.Close()
			return nil, fmt.Errorf("samples %d..%d: %w", b.Index, b.Index+b.N-1, err)
		}
		var bytes int64
		for _, t := range out {
			bytes += int64(t.Len()) * 4
		}
		if bytes > o.MaxPassBytes {
			groups = split(float, out, o.MaxPassBytes)
		} else {
			first = out
		}
		break
	}
	if len(groups) > 1 {
		firstBuf.Release()
		firstBuf = nil
		sess.Close()
		sess = nil
	}
	st.Passes = len(groups)
	done := 0
	for _, g := range groups {
		if err := pass(ctx, m, sess, first, firstBuf, g, ds, set, o, st, func(n int) {
			done += n
			if o.Progress != nil {
				o.Progress(done, total*len(groups))
			}
		}); err != nil {
			return nil, err
		}
		sess, first, firstBuf = nil, nil, nil
	}
	st.Table = set.Table()
	st.Set = set
	st.Table.GraphSHA256 = m.GraphHash()
	st.Table.Samples = total
	for alias, src := range o.Aliases {
		if r := st.Table.Tensors[src]; r != nil {
			c := *r
			c.AliasOf = src
			st.Table.Tensors[alias] = &c
		}
	}
	for _, name := range float {
		if r := st.Table.Tensors[name]; r != nil && r.NonFinite > 0 {
			st.NonFinite = append(st.NonFinite, name)
		}
	}
	st.Seconds = time.Since(start).Seconds()
	return st, nil
}

// candidates lists the values to calibrate, in graph order.
func candidates(m *onnxio.Model, only []string) ([]string, error) {
	names := onnxio.NewIndex(m.Graph()).Activations()
	if len(only) == 0 {
		return names, nil
	}
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for _, n := range only {
		if !seen[n] {
			return nil, fmt.Errorf("tensors: %q is not an activation of the model", n)
		}
	}
	return only, nil
}

// checkAliases checks that every alias is an activation of m and every source one of
// the values measured.
func checkAliases(m *onnxio.Model, names []string, aliases map[string]string) error {
	if len(aliases) == 0 {
		return nil
	}
	all, err := candidates(m, nil)
	if err != nil {
		return err
	}
	isAct := make(map[string]bool, len(all))
	for _, n := range all {
		isAct[n] = true
	}
	measured := make(map[string]bool, len(names))
	for _, n := range names {
		measured[n] = true
	}
	for alias, src := range aliases {
		switch {
		case !isAct[alias]:
			return fmt.Errorf("alias %q is not an activation of the model", alias)
		case measured[alias]:
			return fmt.Errorf("alias %q is also measured", alias)
		case !measured[src]:
			return fmt.Errorf("alias %q: its source %q is not measured", alias, src)
		}
	}
	return nil
}

// augmentedSession opens a copy of m whose outputs include names, and sorts them into
// float values (calibrated) and the rest, by the types onnxruntime infers.
func augmentedSession(m *onnxio.Model, names []string, o Options) (*ort.Session, []string, []string, error) {
	c := &onnxio.Model{Proto: proto.Clone(m.Proto).(*onnxpb.ModelProto)}
	g := c.Graph()
	have := map[string]bool{}
	for _, vi := range g.GetOutput() {
		have[vi.GetName()] = true
	}
	for _, vi := range g.GetInput() {
		have[vi.GetName()] = true // fed: runBatch takes them from the batch
	}
	for _, n := range names {
		if !have[n] {
			have[n] = true
			g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: proto.String(n)})
		}
	}
	data, err := c.Bytes()
	if err != nil {
		return nil, nil, nil, err
	}
	// Folding runs on the same cores while onnxruntime computes the next batch: its idle
	// threads must not spin (resnet_small: 3.8x -> 2.2x the CPU time of plain inference,
	// docs/benchmarks.md).
	s, err := ort.NewSession(data, ort.Options{Threads: o.Threads, Optimization: o.Optimization, NoSpinning: true})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("onnxruntime cannot open the calibration model: %w", err)
	}
	types := map[string]onnxio.DataType{}
	for _, v := range s.Outputs() {
		types[v.Name] = v.Type
	}
	for _, v := range s.Inputs() {
		types[v.Name] = v.Type
	}
	var float, other []string
	for _, n := range names {
		if t, ok := types[n]; ok && t.IsFloat() {
			float = append(float, n)
		} else {
			other = append(other, n)
		}
	}
	return s, float, other, nil
}

// runBatch runs batch b through sess into buf and returns the values of names: model
// inputs straight from the batch (onnxruntime would only copy them), the rest as
// onnxruntime computed them, sharing buf's memory.
func runBatch(sess *ort.Session, buf *ort.Buffers, b *dataset.Batch, names []string) (map[string]*onnxio.Tensor, error) {
	outs := make([]string, 0, len(names))
	fed := map[string]*onnxio.Tensor{}
	for _, n := range names {
		if t, ok := b.Inputs[n]; ok {
			fed[n] = t
		} else {
			outs = append(outs, n)
		}
	}
	var out map[string]*onnxio.Tensor
	var err error
	if len(outs) == 0 {
		// Only inputs are calibrated: run for the errors onnxruntime would report.
		_, err = sess.RunInto(buf, b.Inputs)
		out = map[string]*onnxio.Tensor{}
	} else {
		out, err = sess.RunInto(buf, b.Inputs, outs...)
	}
	if err != nil {
		return nil, err
	}
	for n, t := range fed {
		out[n] = t
	}
	return out, nil
}

// split partitions names into groups whose outputs (measured in out) stay under max bytes.
func split(names []string, out map[string]*onnxio.Tensor, max int64) [][]string {
	var groups [][]string
	var cur []string
	var size int64
	for _, n := range names {
		b := int64(4)
		if t := out[n]; t != nil {
			b = int64(t.Len()) * 4
		}
		if len(cur) > 0 && size+b > max {
			groups = append(groups, cur)
			cur, size = nil, 0
		}
		cur = append(cur, n)
		size += b
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups
}

// pass runs the dataset once with the tensors of group exposed. Inference and folding
// overlap: onnxruntime computes batch i+1 into one set of output buffers while the
// collectors fold batch i from the other, the folding itself spread over the cores by
// tensor. The two sets of buffers are reused from batch to batch, so a pass allocates no
// output memory after its first two batches. sess, when not nil, is a session exposing
// group (pass closes it), and first, when not nil, the outputs of the first batch already
// run, held in firstBuf.
func pass(ctx context.Context, m *onnxio.Model, sess *ort.Session, first map[string]*onnxio.Tensor, firstBuf *ort.Buffers, group []string, ds *dataset.Dataset, set *calibrate.Set, o Options, st *Stats, progress func(int)) error {
	if sess == nil {
		var err error
		if sess, _, _, err = augmentedSession(m, group, o); err != nil {
			return err
		}
		first, firstBuf = nil, nil
	}
	defer sess.Close()
	// Two sets of buffers: one being written by onnxruntime, one being folded.
	bufs := []*ort.Buffers{firstBuf, sess.NewBuffers()}
	if firstBuf == nil {
		bufs[0] = sess.NewBuffers()
	}
	defer func() {
		for _, b := range bufs {
			b.Release()
		}
	}()
	free := make(chan *ort.Buffers, len(bufs))
	if first == nil {
		free <- bufs[0]
	}
	free <- bufs[1]
	inGroup := make(map[string]bool, len(group))
	for _, n := range group {
		inGroup[n] = true
	}
	work := make(chan foldItem, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		foldAll(work, free, inGroup, set, st, progress)
	}()
	err := runAll(ctx, ds, sess, first, bufs[0], free, work, group)
	close(work)
	wg.Wait()
	return err
}

// foldItem is one batch's outputs, waiting to be folded.
type foldItem struct {
	out     map[string]*onnxio.Tensor
	buf     *ort.Buffers // the buffers out lives in
	n       int          // the batch's samples
	inBytes uint64       // the size of the batch's inputs
}

// inputBytes is about the size of batch b's inputs: 4 bytes an element, as float inputs
// have.
func inputBytes(b *dataset.Batch) uint64 {
	var n uint64
	for _, t := range b.Inputs {
		n += uint64(t.Len()) * 4
	}
	return n
}

// runAll runs each batch of ds through sess into a free set of buffers and sends its
// outputs to work; first, when not nil, are the outputs of the first batch, already run
// into firstBuf. It stops at the first error, a cancelled ctx included.
func runAll(ctx context.Context, ds *dataset.Dataset, sess *ort.Session, first map[string]*onnxio.Tensor, firstBuf *ort.Buffers, free <-chan *ort.Buffers, work chan<- foldItem, group []string) error {
	for b, err := range ds.Batches() {
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return err
		}
		if first != nil { // checked and run by Run
			work <- foldItem{first, firstBuf, b.N, inputBytes(b)}
			first = nil
			continue
		}
		if err := dataset.CheckFinite(b); err != nil {
			return err
		}
		buf := <-free
		out, err := runBatch(sess, buf, b, group)
		if err != nil {
			return fmt.Errorf("samples %d..%d: %w", b.Index, b.Index+b.N-1, err)
		}
		work <- foldItem{out, buf, b.N, inputBytes(b)}
	}
	return nil
}

// foldAll folds each batch from work into set, records the peak heap in st, and hands
// the batch's buffers back to free once folded. It collects garbage itself: the batches'
// inputs are the only garbage a pass makes, and left to the collector's pace they would
// pile up to the size of the live heap (the two sets of output buffers) before a cycle; a
// cycle once they pass a sixteenth of it (at least 64 MiB) keeps the peak independent of
// the number of samples.
func foldAll(work <-chan foldItem, free chan<- *ort.Buffers, inGroup map[string]bool, set *calibrate.Set, st *Stats, progress func(int)) {
	var garbage uint64
	workers := max(1, runtime.GOMAXPROCS(0))
	for it := range work {
		foldBatch(it.out, inGroup, set, workers)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		st.PeakHeapBytes = max(st.PeakHeapBytes, ms.HeapInuse)
		free <- it.buf // its outputs are folded: onnxruntime may write the next batch there
		if garbage += it.inBytes; garbage > max(64<<20, ms.HeapInuse/16) {
			runtime.GC()
			garbage = 0
		}
		progress(it.n)
	}
}

// foldBatch observes the values in out of each tensor in inGroup, spread over workers
// goroutines by tensor, largest first so that no worker is left with a big tensor at the
// end.
func foldBatch(out map[string]*onnxio.Tensor, inGroup map[string]bool, set *calibrate.Set, workers int) {
	names := make([]string, 0, len(out))
	for n := range out {
		if inGroup[n] {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return out[b].Len() - out[a].Len() })
	var fw sync.WaitGroup
	next := make(chan string)
	for range workers {
		fw.Add(1)
		go func() {
			defer fw.Done()
			for n := range next {
				vals, err := out[n].Float32s()
				if err == nil {
					set.Observe(n, vals)
				}
			}
		}()
	}
	for _, n := range names {
		next <- n
	}
	close(next)
	fw.Wait()
}

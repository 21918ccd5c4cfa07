package fp16

import (
	"bytes"
	"fmt"
	"go/format"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
	"github.com/onnxpipe/onnxpipe/ort"
)

// The cpu block lists are measured, not guessed: for every op case, a one-op float32
// model is converted with nothing blocked (float32 graph inputs and outputs, the op in
// between in float16 or bfloat16) and run on onnxruntime's CPU provider next to the
// float32 model. An op is supported when, at every opset tried, the session is created,
// the run succeeds and the outputs match the float32 model's (float outputs within the
// SQNR floor below, integer and boolean outputs exactly; inputs are exactly
// representable in the target type). Every other op goes into the block list.
//
// Regenerate blocklist_cpu.go and docs/float16-ops.md with
//
//	ONNXPIPE_FP16_GENERATE=1 go test ./quantize/fp16/ -run TestGenerateCPUBlockList -count=1
//
// TestCPUBlockListCurrent repeats the measurement on every test run and fails when the
// result differs from the generated lists (skipped on another onnxruntime version).

// sqnrFloor is the lowest SQNR, in dB, that counts as the op computing correctly.
var sqnrFloor = map[onnxio.DataType]float64{onnxio.TypeFloat16: 30, onnxio.TypeBFloat16: 20}

type probe struct {
	op     string
	opsets []int64
	failed map[int64]bool // opsets that failed
	ok     bool
	err    string // the first failure
	native string // float16 only: "yes", "no" (onnxruntime inserted Casts), "" unknown
	sqnr   float64
	broken string // the float32 model itself failed: a bug in the op case
}

// probeCase measures one op case at every opset it is tried at.
func probeCase(c opCase, dt onnxio.DataType, dir string) probe {
	p := probe{op: c.op, opsets: c.versions(), ok: true, sqnr: math.Inf(1), failed: map[int64]bool{}}
	native, nativeKnown := true, false
	fail := func(v int64, what string, err error) {
		p.failed[v] = true
		if p.ok {
			p.ok = false
			p.err = fmt.Sprintf("opset %d: %s: %v", v, what, err)
		}
	}
	for _, v := range p.opsets {
		m, feeds, err := buildOpModel(c, v)
		if err != nil {
			p.broken = err.Error()
			return p
		}
		ref, err := runModel(m, feeds, ort.Options{})
		if err != nil {
			p.broken = fmt.Sprintf("opset %d: the float32 model fails: %v", v, err)
			return p
		}
		conv := m.Clone()
		rep, err := Convert(conv, Options{Type: dt, KeepIOTypes: true, BlockOps: []string{}, ConvertIsolated: true})
		if err != nil {
			fail(v, "convert", err)
			continue
		}
		if len(rep.Kept) > 0 {
			p.broken = fmt.Sprintf("opset %d: Convert kept %v in float32", v, rep.Kept)
			return p
		}
		opt := filepath.Join(dir, fmt.Sprintf("%s_%d_%s.onnx", c.op, v, dt))
		got, err := runModel(conv, feeds, ort.Options{OptimizedModelPath: opt})
		if err != nil {
			fail(v, "onnxruntime", err)
			continue
		}
		if c.random {
			for name, r := range ref {
				if g := got[name]; g == nil || !slices.Equal(g.Shape, r.Shape) || g.Type != r.Type {
					fail(v, "outputs", fmt.Errorf("output %q has another shape or type", name))
				}
			}
		} else {
			s, err := compareOutputs(ref, got)
			if err != nil {
				fail(v, "wrong results", err)
				continue
			}
			p.sqnr = min(p.sqnr, s)
			if s < sqnrFloor[dt] {
				fail(v, "wrong results", fmt.Errorf("SQNR %.1f dB against the float32 model (floor %.0f dB)", s, sqnrFloor[dt]))
				continue
			}
		}
		if om, err := onnxio.Load(opt); err == nil {
			if t, ok := nodeInputType(om.Graph(), c.op); ok {
				nativeKnown = true
				native = native && t == onnxio.TypeFloat16
			}
		}
	}
	if dt == onnxio.TypeFloat16 && p.ok && nativeKnown {
		p.native = map[bool]string{true: "yes", false: "no"}[native]
	}
	return p
}

// nodeInputType tells whether the first node of type op in g (an optimized graph saved
// by onnxruntime) reads float16 or float32 values: the types of its inputs that are
// graph inputs, initializers or Cast outputs.
func nodeInputType(g *onnxpb.GraphProto, op string) (onnxio.DataType, bool) {
	n := findNode(g, op)
	if n == nil {
		return 0, false
	}
	found := false
	for _, in := range n.GetInput() {
		switch valueType(g, in) {
		case onnxio.TypeFloat16:
			return onnxio.TypeFloat16, true
		case onnxio.TypeFloat:
			found = true
		}
	}
	return onnxio.TypeFloat, found
}

// probeAll measures every op case for dt, in parallel.
func probeAll(t *testing.T, dt onnxio.DataType) []probe {
	t.Helper()
	dir := t.TempDir()
	out := make([]probe, len(opCases))
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				out[i] = probeCase(opCases[i], dt, dir)
			}
		}()
	}
	for i := range opCases {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, p := range out {
		if p.broken != "" {
			t.Errorf("op case %s is broken: %s", p.op, p.broken)
		}
	}
	return out
}

func blocked(ps []probe) []string {
	var ops []string
	for _, p := range ps {
		if !p.ok {
			ops = append(ops, p.op)
		}
	}
	slices.Sort(ops)
	return ops
}

func TestGenerateCPUBlockList(t *testing.T) {
	if os.Getenv("ONNXPIPE_FP16_GENERATE") == "" {
		t.Skip("set ONNXPIPE_FP16_GENERATE=1 to regenerate blocklist_cpu.go and docs/float16-ops.md")
	}
	initORT(t)
	f16 := probeAll(t, onnxio.TypeFloat16)
	bf16 := probeAll(t, onnxio.TypeBFloat16)
	if t.Failed() {
		return
	}
	version := ort.Version()
	src := generateGo(version, blocked(f16), blocked(bf16))
	if err := os.WriteFile("blocklist_cpu.go", src, 0o644); err != nil {
		t.Fatal(err)
	}
	doc := generateDoc(version, f16, bf16)
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "float16-ops.md"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("onnxruntime %s: float16 blocks %v; bfloat16 blocks %d ops", version, blocked(f16), len(blocked(bf16)))
}

func TestCPUBlockListCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("measures every op on onnxruntime")
	}
	initORT(t)
	if v := ort.Version(); v != cpuBlockListORTVersion {
		t.Fatalf("the cpu block lists were measured on onnxruntime %s, this is %s: regenerate them (ONNXPIPE_FP16_GENERATE=1 go test ./quantize/fp16/ -run TestGenerateCPUBlockList) and commit blocklist_cpu.go and docs/float16-ops.md", cpuBlockListORTVersion, v)
	}
	for _, tc := range []struct {
		dt   onnxio.DataType
		list []string
	}{{onnxio.TypeFloat16, cpuBlockOpsFloat16}, {onnxio.TypeBFloat16, cpuBlockOpsBFloat16}} {
		got := blocked(probeAll(t, tc.dt))
		if !slices.Equal(got, tc.list) {
			t.Errorf("%s: measured block list %v, blocklist_cpu.go has %v: regenerate (ONNXPIPE_FP16_GENERATE=1 go test ./quantize/fp16/ -run TestGenerateCPUBlockList)", tc.dt, got, tc.list)
		}
	}
}

func generateGo(version string, f16, bf16 []string) []byte {
	var b bytes.Buffer
	b.WriteString("// Code generated by TestGenerateCPUBlockList (ONNXPIPE_FP16_GENERATE=1 go test ./quantize/fp16/ -run TestGenerateCPUBlockList); DO NOT EDIT.\n\n")
	b.WriteString("package fp16\n\n")
	b.WriteString("// cpuBlockListORTVersion is the onnxruntime version the cpu block lists were measured on.\n")
	fmt.Fprintf(&b, "const cpuBlockListORTVersion = %q\n\n", version)
	list := func(name, what string, ops []string) {
		fmt.Fprintf(&b, "// %s lists the op types onnxruntime's CPU provider failed to run in %s.\n", name, what)
		fmt.Fprintf(&b, "var %s = []string{\n", name)
		for _, op := range ops {
			fmt.Fprintf(&b, "\t%q,\n", op)
		}
		b.WriteString("}\n\n")
	}
	list("cpuBlockOpsFloat16", "float16", f16)
	list("cpuBlockOpsBFloat16", "bfloat16", bf16)
	src, err := format.Source(b.Bytes())
	if err != nil {
		panic(err)
	}
	return src
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 220 {
		s = s[:217] + "..."
	}
	return s
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// findings summarizes the measurement in a paragraph.
func findings(f16, bf16 []probe) string {
	var native, casts, unknown, ok16, okbf []string
	for _, p := range f16 {
		if !p.ok {
			continue
		}
		ok16 = append(ok16, p.op)
		switch p.native {
		case "yes":
			native = append(native, p.op)
		case "no":
			casts = append(casts, p.op)
		default:
			unknown = append(unknown, p.op)
		}
	}
	for _, p := range bf16 {
		if p.ok {
			okbf = append(okbf, p.op)
		}
	}
	return fmt.Sprintf(`## Findings

- float16: %d of %d ops run and match float32; %d are blocked (%s).
- Of the float16 ops that run, only %d have a float16 CPU kernel (%s). %d run because
  onnxruntime inserts Casts to float32 around them (and removes the Cast pairs between
  such nodes), so on the CPU a float16 model mostly computes in float32: float16 saves
  file size and memory there, not time, and values between two such nodes are not
  rounded to float16 (an overflow between them does not show on the CPU although it
  would on a GPU). For %d the graph onnxruntime saved did not show (node fused, folded
  or removed).
- bfloat16: only %d ops run (%s). onnxruntime's Cast insertion covers float16 only, so
  every op without a bfloat16 kernel fails to load; a bfloat16 model for the CPU keeps
  nearly everything in float32 (with ForceInitializers its weights can still be stored
  in bfloat16).
`, len(ok16), len(f16), len(blocked(f16)), strings.Join(blocked(f16), ", "), len(native), strings.Join(native, ", "),
		len(casts), len(unknown), len(okbf), strings.Join(okbf, ", "))
}

func generateDoc(version string, f16, bf16 []probe) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Float16 and bfloat16 op support (onnxruntime %s, CPU provider)

<!-- Generated by TestGenerateCPUBlockList in quantize/fp16; do not edit by hand. -->

This table is what `+"`fp16.DefaultBlockOps(\"cpu\")`"+` (float16) and
`+"`fp16.DefaultBlockOpsFor(\"cpu\", onnxio.TypeBFloat16)`"+` are generated from. Each op was
measured, not looked up: a one-op float32 model (inputs as graph inputs, weights as
initializers) was converted by `+"`fp16.Convert`"+` with nothing blocked and float32 graph
inputs and outputs (so the op itself computes in float16 or bfloat16, with Casts at the
edges), and run on onnxruntime's CPU provider next to the float32 model. An op counts as
supported when, at every opset listed, the session is created, the run succeeds and the
results match the float32 model's: float outputs within %.0f dB SQNR (bfloat16: %.0f dB),
integer and boolean outputs exactly (the inputs are exactly representable in the target
type, so only the op's own arithmetic differs). Unsupported ops are the block list:
`+"`Convert`"+` keeps them in float32 with Casts around them.

Regenerate after changing the onnxruntime version or the op cases
(quantize/fp16/opcases_test.go):

    ONNXPIPE_FP16_GENERATE=1 go test ./quantize/fp16/ -run TestGenerateCPUBlockList -count=1

`+"`TestCPUBlockListCurrent`"+` repeats the measurement in every test run and fails when the
generated list is stale (it skips on another onnxruntime version).

Column "native fp16 kernel": "no" means the session runs only because onnxruntime's
InsertCastTransformer put float32 Casts around the node (the CPU provider has no float16
kernel for it: the op computes in float32 anyway and the Casts cost time); detected from
the optimized graph onnxruntime saved: "yes" when the node still reads a float16 value
(a Cast to float16, a float16 initializer), "no" when it reads float32 (onnxruntime's
Cast to float, or the graph's float32 input once onnxruntime dropped the Cast pair),
empty when the node is gone (fused, folded, removed) or reads no float input. "SQNR" is
the worst float output over the opsets (inf: bit-identical to float32).

The cuda list (`+"`DefaultBlockOps(\"cuda\")`"+`) is NOT measured: it is onnxruntime
float16.py's DEFAULT_OP_BLOCK_LIST (CumSum, Max, Min, NonMaxSuppression, Range,
RandomUniformLike, Resize, RoiAlign, TopK, Upsample) until a GPU run replaces it.

Inputs that stay float32 whatever the block list says, because the op's type constraint
or their meaning requires it (onnxruntime float16.py's ALWAYS_FLOAT_INPUTS, extended):
Resize scales (input 2), Upsample scales (1), NonMaxSuppression boxes, scores and
thresholds (0, 1, 3, 4), DynamicQuantizeLinear x (0), QuantizeLinear x and scale (0, 1),
DequantizeLinear scale (1), OneHot depth (1), com.microsoft GroupNorm/SkipGroupNorm gamma
and beta (1, 2).

%s

| op | opsets | float16 supported | native fp16 kernel | float16 SQNR dB | bfloat16 supported | bfloat16 SQNR dB | error (first failure) |
|---|---|---|---|---|---|---|---|
`, version, sqnrFloor[onnxio.TypeFloat16], sqnrFloor[onnxio.TypeBFloat16], findings(f16, bf16))
	db := func(p probe) string {
		if !p.ok {
			return ""
		}
		if math.IsInf(p.sqnr, 1) {
			return "inf"
		}
		return fmt.Sprintf("%.1f", p.sqnr)
	}
	for i, p := range f16 {
		q := bf16[i]
		var vs []string
		for _, v := range p.opsets {
			s := fmt.Sprint(v)
			switch {
			case p.failed[v] && q.failed[v]:
				s += " (both fail)"
			case p.failed[v]:
				s += " (fp16 fails)"
			case q.failed[v]:
				s += " (bf16 fails)"
			}
			vs = append(vs, s)
		}
		var errs []string
		if !p.ok {
			errs = append(errs, cell("float16: "+p.err))
		}
		if !q.ok {
			errs = append(errs, cell("bfloat16: "+q.err))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", p.op, strings.Join(vs, ", "), yesNo(p.ok), p.native, db(p), yesNo(q.ok), db(q), strings.Join(errs, "<br>"))
	}
	fmt.Fprintf(&b, "\nfloat16 block list (%d ops): %s\n\nbfloat16 block list (%d ops): %s\n",
		len(blocked(f16)), strings.Join(blocked(f16), ", "), len(blocked(bf16)), strings.Join(blocked(bf16), ", "))
	return b.Bytes()
}

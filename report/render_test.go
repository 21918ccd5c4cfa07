package report

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestHTMLTablesEnvironmentAndCharts(t *testing.T) {
	j := sample()
	j.Environment = Env{OS: "linux", Arch: "amd64", CPUs: 2, CPU: "Xeon", Features: []string{"avx2", "avx512_vnni"},
		Providers: []string{"CPUExecutionProvider"}, Unavailable: map[string]string{"cuda": "no libcudart", "tensorrt": "no libnvinfer"},
		Library: "/opt/ort/libonnxruntime.so"}
	j.Tool.ONNXRuntime = "1.30.0"
	top := Float(60)
	j.Stages[0].Tables = []Table{{Title: "outputs", Columns: []string{"provider", "output", "SQNR (dB)", "ratio"},
		Rows: [][]string{{"cpu", "logits", "40.54", "0.77x"}, {"cuda", "unavailable: no libcudart"}}, Note: "a note"}}
	j.Stages[0].Charts = append(j.Stages[0].Charts,
		Chart{Title: "hist", Kind: "hist", XLabel: "value", YLabel: "count", XNum: []float64{0, 1, 2},
			Series: []Series{{Name: "reference", Values: []Float{1000, 0, 3}}, {Name: "candidate", Values: []Float{900, 5, 3}}}},
		Chart{Title: "layers", Kind: "line", YLabel: "dB", X: []string{"input", "/features/features.6/Relu_output_0", "c"}, YMax: &top,
			Series: []Series{{Name: "SQNR", Values: []Float{140, 36, Float(math.Inf(1))}}}})
	html, err := j.HTML()
	if err != nil {
		t.Fatal(err)
	}
	h := string(html)
	for _, want := range []string{
		`<td class="num">40.54</td>`, `<td class="num">0.77x</td>`, // figures right-aligned
		`<td colspan="3">unavailable: no libcudart</td>`, // a short row spans the rest
		"a note", "CPUExecutionProvider", "no libnvinfer", "/opt/ort/libonnxruntime.so", "avx512_vnni",
		"count (log scale)",            // histograms on a log axis
		"above 60 (drawn at the top)",  // capped values marked
		"…es/features.6/Relu_output_0", // long tick labels keep their end
		"Liberation Sans',Arial",       // a sans face with fallbacks
	} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if n := strings.Count(h, "<svg"); n != 5 {
		t.Errorf("want 5 charts (size + 4), got %d", n)
	}
	md := string(j.Markdown())
	for _, want := range []string{"| cuda | unavailable: no libcudart | | |", "| cuda | unavailable: no libcudart |\n", "| providers | CPUExecutionProvider |", "| CPU features | avx2 avx512_vnni |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestShortNumber(t *testing.T) {
	for i, c := range []struct {
		v    float64
		want string
	}{{0, "0"}, {0.039, "0.039"}, {0.0390001, "0.039"}, {1.553, "1.55"}, {811.8, "812"}, {60, "60"}, {-2.5, "-2.5"}, {1e7, "1e+07"}, {0.0001234, "0.000123"}} {
		if got := shortNumber(c.v); got != c.want {
			t.Errorf("%d: shortNumber(%v) = %q, want %q", i, c.v, got, c.want)
		}
	}
}

func TestIndexHTML(t *testing.T) {
	m := Metric{Name: "accuracy", Value: 0.9878, Key: true}
	x := &Index{Config: "batch.yaml", Created: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Tool: Tool{Name: "onnxpipe", Version: "dev"},
		Counts: map[string]int{"ok": 2, "failed": 1},
		Jobs: []IndexJob{
			{Name: "b", Status: "ok", Report: "b/b.report.html", InputBytes: 2048, OutputBytes: 512, KeyMetric: &m},
			{Name: "a", Status: "ok", Report: "a.report.html", InputBytes: 1024},
			{Name: "z", Status: "failed", Error: "cannot read <model>", Report: ""},
		}}
	page, err := x.HTML()
	if err != nil {
		t.Fatal(err)
	}
	h := string(page)
	for _, want := range []string{"Batch: 3 jobs", "2 ok", "1 failed", `<a href="b/b.report.html">b</a>`, "0.25x", "accuracy <b>0.9878</b>", "cannot read &lt;model&gt;"} {
		if !strings.Contains(h, want) {
			t.Errorf("index lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, `href="">`) {
		t.Errorf("a job without a report got an empty link")
	}
	za, aa, ba := strings.Index(h, ">z<"), strings.Index(h, ">a</a>"), strings.Index(h, ">b</a>")
	if !(za >= 0 && za < aa && aa < ba) {
		t.Errorf("order: failed first, then by name (z %d, a %d, b %d)", za, aa, ba)
	}
	if x.Jobs[0].Name != "b" {
		t.Errorf("HTML reordered the caller's slice")
	}
}

// Names, paths, errors and notes come from users' files: both renderings keep them as
// text, never as markup.
func TestReportsEscapeNames(t *testing.T) {
	const evil = `<img src=x onerror=alert(1)>|x`
	j := sample()
	j.Name, j.Model.Path, j.Error = evil, "models/"+evil+".onnx", "cannot read "+evil
	j.Stages[0].Notes = []string{"node " + evil}
	j.Stages[0].Warnings = []string{"warn " + evil}
	j.Stages[0].Tables = []Table{{Title: evil, Columns: []string{"node"}, Rows: [][]string{{evil}}, Note: evil}}
	html, err := j.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for what, out := range map[string]string{"HTML": string(html), "Markdown": string(j.Markdown())} {
		if strings.Contains(out, "<img") {
			t.Errorf("%s holds a raw <img> tag from a name", what)
		}
		if !strings.Contains(out, "&lt;img src=x onerror=alert(1)") {
			t.Errorf("%s does not show the name as escaped text", what)
		}
	}
	if md := string(j.Markdown()); strings.Contains(md, ">|x") {
		t.Errorf("Markdown keeps an unescaped pipe from a name, which splits its table row")
	}
}

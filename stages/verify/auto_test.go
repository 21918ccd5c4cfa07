package verify_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/internal/cli"
	"github.com/onnxpipe/onnxpipe/internal/mnist"
	_ "github.com/onnxpipe/onnxpipe/stages/all"
)

// The MNIST CNN fixture, int8 QDQ with minmax ranges from 200 training images, judged on
// 500 test images. auto_exclude puts back to float the layers that introduce the most
// error, two nodes per try. The tests set their bounds from what the first quantization
// measures in the same run, and from the two ends that need no measurement: 1000 dB is
// out of reach of any model that still quantizes a node, and a model with every node put
// back is exact.
const autoConfig = `model: %s
output: out/{name}.int8.onnx
datasets:
  calib:
    format: idx
    inputs: {input: %s}
    limit: 200
    batch: 100
  test:
    format: idx
    inputs: {input: %s}
    labels: %s
    limit: 500
    batch: 100
stages:
  - calibrate: {dataset: calib}
  - quantize: {mode: static}
  - verify:
      dataset: test
      thresholds:
        sqnr_db: %g
      latency: {runs: 0}
      auto_exclude: {max_tries: %d}
`

type try struct {
	Try            int      `json:"try"`
	Added          []string `json:"added"`
	Excluded       []string `json:"excluded"`
	NodesQuantized int      `json:"nodes_quantized"`
	Passed         bool     `json:"passed"`
	Failures       []string `json:"failures"`
	SQNRdB         float64  `json:"sqnr_db"`
}

type verifyReport struct {
	Status string `json:"status"`
	Output *struct {
		Quantization string `json:"quantization"`
	} `json:"output"`
	Stages []struct {
		Stage  string `json:"stage"`
		Status string `json:"status"`
		Data   struct {
			Passed   bool       `json:"passed"`
			Failures []string   `json:"failures"`
			Tries    []try      `json:"auto_exclude_tries"`
			PerLayer []struct{} `json:"per_layer"`
		} `json:"data"`
		Tables []struct {
			Title string     `json:"title"`
			Rows  [][]string `json:"rows"`
		} `json:"tables"`
	} `json:"stages"`
}

// runAuto runs the config with max_tries through the command line and returns the exit
// status, the parsed report and the folder.
func runAuto(t *testing.T, maxTries int, sqnr float64) (int, *verifyReport, string) {
	t.Helper()
	dir, err := mnist.Dir()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	model, _ := filepath.Abs("../../testdata/models/mnist_cnn.onnx")
	cfg := fmt.Sprintf(autoConfig, model, filepath.Join(dir, mnist.TrainImages), filepath.Join(dir, mnist.TestImages),
		filepath.Join(dir, mnist.TestLabels), sqnr, maxTries)
	path := filepath.Join(work, "auto.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := cli.Main([]string{"run", path}, &stdout, &stderr)
	data, err := os.ReadFile(filepath.Join(work, "out", "mnist_cnn.int8.report.json"))
	if err != nil {
		t.Fatalf("exit %d, no report: %v\n%s", code, err, stderr.String())
	}
	var rep verifyReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Stages) != 4 || rep.Stages[3].Stage != "verify" {
		t.Fatalf("stages: %+v", rep.Stages)
	}
	return code, &rep, work
}

func TestAutoExclude(t *testing.T) {
	// Out of tries: 1000 dB is not reached while any node is quantized.
	code, rep, work := runAuto(t, 1, 1000)
	if code != 1 || rep.Status != "rejected" {
		t.Fatalf("exit %d, status %s; want 1, rejected", code, rep.Status)
	}
	v := rep.Stages[3]
	if v.Status != "rejected" || v.Data.Passed {
		t.Errorf("verify: %s, passed %v", v.Status, v.Data.Passed)
	}
	if len(v.Data.Tries) != 2 {
		t.Fatalf("want tries 0 and 1 in the report, got %+v", v.Data.Tries)
	}
	for i, tr := range v.Data.Tries {
		if tr.Try != i || tr.Passed || len(tr.Failures) == 0 {
			t.Errorf("try %d: %+v", i, tr)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "out", "mnist_cnn.int8.onnx")); !os.IsNotExist(err) {
		t.Errorf("a rejected job wrote its output (%v)", err)
	}
	checkTriesInReports(t, work, 2)

	// A bound 1 dB above the first quantization's: try 0 fails, a later try passes (with
	// every node put back the model is exact, so enough tries always get there).
	first := v.Data.Tries[0].SQNRdB
	bound := first + 1
	code, rep, work = runAuto(t, 20, bound)
	if code != 0 || rep.Status != "ok" {
		t.Fatalf("exit %d, status %s; want a pass after re-quantizing for sqnr_db >= %.1f", code, rep.Status, bound)
	}
	v = rep.Stages[3]
	tries := v.Data.Tries
	if len(tries) < 2 {
		t.Fatalf("want the first quantization and at least one retry, got %+v", tries)
	}
	for _, tr := range tries {
		t.Logf("try %d: put back %v, SQNR %.1f dB, passed %v", tr.Try, tr.Added, tr.SQNRdB, tr.Passed)
	}
	if tries[0].Try != 0 || tries[0].Passed || tries[0].SQNRdB != first || len(tries[0].Failures) == 0 || !strings.Contains(tries[0].Failures[0], "sqnr_db") {
		t.Errorf("try 0 should fail on sqnr_db at %.2f dB as before: %+v", first, tries[0])
	}
	last := tries[len(tries)-1]
	if !last.Passed || last.SQNRdB < bound || !v.Data.Passed {
		t.Errorf("the last try should pass with sqnr_db >= %.1f: %+v", bound, last)
	}
	for i, tr := range tries[1:] {
		if tr.Try != i+1 || len(tr.Added) == 0 {
			t.Errorf("try %d: %+v", i+1, tr)
		}
		if tr.NodesQuantized >= tries[i].NodesQuantized || len(tr.Excluded) <= len(tries[i].Excluded) {
			t.Errorf("try %d does not keep more nodes in float than try %d: %+v then %+v", tr.Try, i, tries[i], tr)
		}
		if i+1 < len(tries)-1 && tr.Passed {
			t.Errorf("try %d passed but more tries followed", tr.Try)
		}
	}
	// The artifact is the last try's model: written, still int8 QDQ where it is quantized.
	if last.NodesQuantized > 0 && (rep.Output == nil || rep.Output.Quantization != "qdq") {
		t.Errorf("output: %+v", rep.Output)
	}
	if _, err := os.Stat(filepath.Join(work, "out", "mnist_cnn.int8.onnx")); err != nil {
		t.Error(err)
	}
	checkTriesInReports(t, work, len(tries))
}

// checkTriesInReports checks that every try has its row in the JSON table and in the
// Markdown and HTML reports.
func checkTriesInReports(t *testing.T, work string, n int) {
	t.Helper()
	prefix := filepath.Join(work, "out", "mnist_cnn.int8.report")
	md, err := os.ReadFile(prefix + ".md")
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(prefix + ".html")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []struct {
		name, text string
	}{{"md", string(md)}, {"html", string(html)}} {
		if !strings.Contains(doc.text, "auto_exclude tries") {
			t.Errorf("%s report has no auto_exclude table", doc.name)
		}
		if got := strings.Count(doc.text, "(the quantize stage's model)") + strings.Count(doc.text, "(the quantize stage&#39;s model)"); got != 1 {
			t.Errorf("%s report: try 0 appears %d times", doc.name, got)
		}
	}
	// the Markdown table has a row per try, numbered from 0
	_, table, ok := strings.Cut(string(md), "**auto_exclude tries**\n\n")
	if !ok {
		t.Fatalf("markdown has no tries table:\n%s", md)
	}
	table, _, _ = strings.Cut(table, "\n\n")
	rows := strings.Split(table, "\n")[2:] // after the header and the rule
	if len(rows) != n {
		t.Fatalf("markdown: %d try rows, want %d:\n%s", len(rows), n, table)
	}
	for i, r := range rows {
		if !strings.HasPrefix(r, fmt.Sprintf("| %d | ", i)) {
			t.Errorf("markdown row %d: %s", i, r)
		}
	}
}

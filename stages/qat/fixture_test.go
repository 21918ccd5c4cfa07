package qat_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/report"
)

// fixtureConfig writes a config for a committed fixture with random training and
// validation data (npy, 64 samples each) and the given stages.
func fixtureConfig(t *testing.T, model string, sample []int64, stages string) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, split := range []string{"train", "val"} {
		var feeds []map[string]*onnxio.Tensor
		for range 4 {
			feeds = append(feeds, testutil.RandomFeed(rng, "input", append([]int64{16}, sample...)))
		}
		sub := filepath.Join(dir, split)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := testutil.NPYDataset(sub, feeds); err != nil {
			t.Fatal(err)
		}
	}
	text := fmt.Sprintf(`model: %s
output: %s
datasets:
  train:
    format: npy
    inputs: {input: %s}
  val:
    format: npy
    inputs: {input: %s}
stages:
%s`, testutil.Fixture(model), filepath.Join(dir, "{name}.qat.onnx"), filepath.Join(dir, "train", "input0.npy"),
		filepath.Join(dir, "val", "input0.npy"), stages)
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func metric(rec *report.Stage, name string) (float64, bool) {
	for _, m := range rec.Metrics {
		if m.Name == name {
			return float64(m.Value), true
		}
	}
	return 0, false
}

// TestTransformerQAT fine-tunes the int8 QDQ tiny transformer (and int4 weights of the
// float one): the quantized constants (GELU's, the attention scale) are not trained,
// the report has the SQNR before and after against the float model, and the model
// written is not worse than the post-training quantization.
func TestTransformerQAT(t *testing.T) {
	for _, c := range []struct {
		stages           string
		trained, weights float64
	}{
		// 9 weight matrices and 6 biases after a MatMul; 4 constants: GELU's √2 and 1
		{"  - calibrate: {dataset: train}\n  - quantize\n  - qat: {dataset: train, validation: val, epochs: 2, batch: 16, optimizer: {lr: 0.001}}\n", 15, 19},
		{"  - prepare\n  - qat: {dataset: train, validation: val, weights: {type: int4}, epochs: 2, batch: 16, optimizer: {lr: 0.001}}\n", 9, 9},
	} {
		st := c.stages
		res := testutil.RunConfig(t, fixtureConfig(t, "tiny_transformer.onnx", []int64{16, 32}, st))
		if res.Failed() != 0 {
			t.Fatalf("%q: %v", st, res.Outcomes[0].Err)
		}
		rec := testutil.StageRecord(t, res.Outcomes[0], "qat")
		before, ok1 := metric(rec, "sqnr_db_before")
		after, ok2 := metric(rec, "sqnr_db_after")
		kept, _ := metric(rec, "sqnr_db")
		trained, _ := metric(rec, "trained_weights")
		weights, _ := metric(rec, "weights")
		t.Logf("%q: SQNR %.2f → %.2f dB, kept %.2f; %v of %v quantized initializers trained; notes %q; warnings %q", st, before, after, kept, trained, weights, rec.Notes, rec.Warnings)
		if !ok1 || !ok2 || !strings.Contains(strings.Join(rec.Notes, "\n"), "fidelity on val") {
			t.Errorf("no fidelity before and after in the report: %v %q", rec.Metrics, rec.Notes)
		}
		if kept < before {
			t.Errorf("the model written has SQNR %.2f dB, below the post-training quantization's %.2f", kept, before)
		}
		if trained != c.trained || weights != c.weights {
			t.Errorf("%v of %v quantized initializers trained, want %v of %v (the layers' weights and biases, not the constants)", trained, weights, c.trained, c.weights)
		}
	}
}

// TestKeepBest: QAT at a learning rate that wrecks the model (Adam, lr 1) is worse than
// the int8 post-training quantization it started from: both are measured (accuracy and
// SQNR, before and after), a warning says so, and keep: best (the default) writes the
// post-training model (its initializers are those the save stage wrote before qat),
// keep: last the fine-tuned one.
func TestKeepBest(t *testing.T) {
	for _, keep := range []string{"", "keep: last, "} {
		dir := t.TempDir()
		ptqPath := filepath.Join(dir, "ptq.onnx")
		res := testutil.RunConfig(t, config(t, "  - calibrate: {dataset: train}\n  - quantize\n  - save: {path: "+ptqPath+"}\n"+
			"  - qat: {dataset: train, validation: train, "+keep+"hard_weight: 1, epochs: 1, batch: 32, optimizer: {lr: 1}}\n"))
		if res.Failed() != 0 {
			t.Fatalf("%q: %v", keep, res.Outcomes[0].Err)
		}
		rec := testutil.StageRecord(t, res.Outcomes[0], "qat")
		for _, name := range []string{"accuracy", "accuracy_before", "accuracy_after", "float_accuracy", "sqnr_db", "sqnr_db_before", "sqnr_db_after"} {
			if _, ok := metric(rec, name); !ok {
				t.Errorf("%q: no metric %s in %v", keep, name, rec.Metrics)
			}
		}
		before, _ := metric(rec, "accuracy_before")
		after, _ := metric(rec, "accuracy_after")
		kept, _ := metric(rec, "accuracy")
		t.Logf("%q: accuracy %.4f → %.4f, kept %.4f; warnings %q", keep, before, after, kept, rec.Warnings)
		if !(after < before) || len(rec.Warnings) == 0 || !strings.Contains(rec.Warnings[0], "QAT made the model worse") {
			t.Fatalf("%q: accuracy %.4f → %.4f, warnings %q: want a worse model and a warning", keep, before, after, rec.Warnings)
		}
		out, err := onnxio.Load(strings.Replace(res.Outcomes[0].Job.Output, "{name}", "mnist_cnn", 1))
		if err != nil {
			t.Fatal(err)
		}
		ptq, err := onnxio.Load(ptqPath)
		if err != nil {
			t.Fatal(err)
		}
		same := len(out.Proto.Graph.Initializer) == len(ptq.Proto.Graph.Initializer)
		for i, tp := range out.Proto.Graph.Initializer {
			same = same && i < len(ptq.Proto.Graph.Initializer) && proto.Equal(tp, ptq.Proto.Graph.Initializer[i])
		}
		if want := keep == ""; same != want {
			t.Errorf("%q: the written model is the post-training one: %v, want %v", keep, same, want)
		}
		if want := map[bool]float64{true: before, false: after}[keep == ""]; kept != want {
			t.Errorf("%q: key accuracy %.4f, want the written model's %.4f", keep, kept, want)
		}
	}
}

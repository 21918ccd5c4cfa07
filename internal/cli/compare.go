package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/onnxpipe/onnxpipe/dataset"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/report"
	"github.com/onnxpipe/onnxpipe/verify"
)

type compareFlags struct {
	data, input, labels, providers, lib string
	asJSON                              bool
	latency                             int
}

func compareCmd(g *globals) *cobra.Command {
	f := &compareFlags{}
	c := &cobra.Command{
		Use:   "compare REF.onnx CAND.onnx --data FILE.npy",
		Short: "Compare two models output by output on a dataset",
		Long: `Compare runs both models on the samples of an .npy file (first axis = samples) and
prints, per output and provider: max/mean absolute error, RMSE, cosine, SQNR, top-1/top-5
agreement for classifier-shaped outputs, and accuracy with --labels. The candidate runs
on each provider of --providers; unavailable ones are reported, not fatal. Each model is
fed the float type its input declares (float32 data converted for a float16 model, and
float16 outputs read as float32), and the conversions are printed.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error { return compare(g, f, args[0], args[1]) },
	}
	fl := c.Flags()
	fl.StringVar(&f.data, "data", "", "an .npy file of input samples (required)")
	fl.StringVar(&f.input, "input", "", "the model input the data feeds (default: the model's only input)")
	fl.StringVar(&f.labels, "labels", "", "an .npy file of integer class ids, one per sample")
	fl.StringVar(&f.providers, "providers", "cpu", "providers the candidate runs on, comma-separated: cpu, cuda, tensorrt")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON (the verify report of docs/formats.md)")
	fl.IntVar(&f.latency, "latency-runs", 0, "also time both models at batch 1 with this many runs")
	fl.StringVar(&f.lib, "ort-lib", "", ortLibUsage)
	_ = c.MarkFlagRequired("data")
	return c
}

func compare(g *globals, f *compareFlags, refPath, candPath string) error {
	ref, err := onnxio.Load(refPath)
	if err != nil {
		return exit(ExitFailed, err)
	}
	cand, err := onnxio.Load(candPath)
	if err != nil {
		return exit(ExitFailed, err)
	}
	if err := ort.Init(f.lib); err != nil {
		return exit(ExitFailed, err)
	}
	inputs := dataset.InputsOf(ref)
	name := f.input
	if name == "" {
		if len(inputs) != 1 {
			var names []string
			for _, in := range inputs {
				names = append(names, in.Name)
			}
			return exit(ExitUsage, fmt.Errorf("the model has %d inputs (%s): name the one --data feeds with --input", len(inputs), strings.Join(names, ", ")))
		}
		name = inputs[0].Name
	}
	spec := &dataset.Spec{Format: "npy", Inputs: map[string]string{name: f.data}, Labels: f.labels}
	if strings.HasSuffix(f.data, ".npz") {
		spec.Format = "npz"
	}
	// Each model is fed its own input types (float data converted between float types).
	ds, err := dataset.Open(spec, verify.DataInputs(spec, ref))
	if err != nil {
		return exit(ExitFailed, fmt.Errorf("%s: %w", filepath.Base(f.data), err))
	}
	defer ds.Close()
	var provs []ort.Provider
	for _, p := range strings.Split(f.providers, ",") {
		pv, err := ort.ParseProvider(strings.TrimSpace(p))
		if err != nil {
			return exit(ExitUsage, err)
		}
		provs = append(provs, pv)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := verify.Options{Providers: provs, Require: []ort.Provider{ort.CPU}}
	if f.latency > 0 {
		opts.Latency = verify.LatencyOptions{Warmup: 3, Runs: f.latency, Batch: []int{1}}
	}
	rep, err := verify.Run(ctx, ref, cand, ds, opts)
	if err != nil {
		return exit(ExitFailed, err)
	}
	if f.asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(g.stdout, "size: %s -> %s (%.3fx)\n", report.HumanBytes(rep.ReferenceBytes), report.HumanBytes(rep.CandidateBytes), rep.SizeRatio)
	if n := verify.ConversionsNote(rep.Conversions); n != "" {
		fmt.Fprintln(g.stdout, n)
	}
	for _, pr := range rep.Providers {
		if !pr.Available {
			fmt.Fprintf(g.stdout, "%s: unavailable: %s\n", pr.Provider, pr.Reason)
			continue
		}
		for _, m := range pr.Outputs {
			fmt.Fprintf(g.stdout, "%s %s: sqnr %.2f dB, cosine %.6f, max_abs %.4g, mean_abs %.4g, rmse %.4g",
				pr.Provider, m.Output, float64(m.SQNRdB), m.Cosine, m.MaxAbs, m.MeanAbs, m.RMSE)
			if m.Top1Agreement != nil {
				fmt.Fprintf(g.stdout, ", top1 %.4f, top5 %.4f", *m.Top1Agreement, *m.Top5Agreement)
			}
			if m.CandAccuracy != nil {
				fmt.Fprintf(g.stdout, ", accuracy %.4f (reference %.4f)", *m.CandAccuracy, *m.RefAccuracy)
			}
			fmt.Fprintf(g.stdout, " [%d samples]\n", m.Samples)
		}
		for _, l := range pr.Latency {
			fmt.Fprintf(g.stdout, "%s latency %s batch %d: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms\n", pr.Provider, l.Model, l.Batch, l.P50, l.P90, l.P99)
		}
		if pr.LatencyNote != "" {
			fmt.Fprintf(g.stdout, "%s latency: %s\n", pr.Provider, pr.LatencyNote)
		}
	}
	return nil
}

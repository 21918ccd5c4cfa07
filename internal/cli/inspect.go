package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
	"github.com/onnxpipe/onnxpipe/report"
)

func inspectCmd(g *globals) *cobra.Command {
	var asJSON bool
	var lib string
	c := &cobra.Command{
		Use:   "inspect MODEL.onnx",
		Short: "Describe a model: IR, opsets, inputs/outputs, ops, parameters, quantization",
		Long: `Inspect prints a model's IR version, producer, opset imports, inputs and outputs with
element types and shapes (symbolic dimensions by name), node count (subgraphs included),
op-type histogram, parameters by element type (initializers and Constant nodes), external
data files, whether it is already quantized (QDQ, QOperator, dynamic) or float16, and
whether onnxruntime opens it. --json prints the documented format of docs/inspect.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := onnxio.Load(args[0])
			if err != nil {
				return exit(ExitFailed, err)
			}
			s := onnxio.Summarize(m)
			if st, err := os.Stat(args[0]); err == nil {
				s.FileBytes = st.Size()
			}
			s.Runtime = runtimeCheck(m, lib)
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			printSummary(g.stdout, s)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (docs/inspect.md)")
	c.Flags().StringVar(&lib, "ort-lib", "", ortLibUsage)
	return c
}

func runtimeCheck(m *onnxio.Model, lib string) *onnxio.RuntimeCheck {
	rc := &onnxio.RuntimeCheck{}
	if err := ort.Init(lib); err != nil {
		rc.Error = err.Error()
		return rc
	}
	rc.Version = ort.Version()
	data, err := m.Bytes()
	if err == nil {
		var s *ort.Session
		if s, err = ort.NewSession(data, ort.Options{}); err == nil {
			s.Close()
		}
	}
	if err != nil {
		rc.Error = err.Error()
		return rc
	}
	rc.Opens = true
	return rc
}

func printSummary(w io.Writer, s *onnxio.Summary) {
	row := func(k, format string, args ...any) {
		fmt.Fprintf(w, "%-12s "+format+"\n", append([]any{k}, args...)...)
	}
	row("model", "%s (%s)", s.Path, report.HumanBytes(s.FileBytes))
	prod := s.Producer
	if s.ProducerVersion != "" {
		prod += " " + s.ProducerVersion
	}
	row("ir_version", "%d, producer %s", s.IRVersion, prod)
	var ops []string
	for _, o := range s.Opsets {
		ops = append(ops, fmt.Sprintf("%s %d", o.Domain, o.Version))
	}
	row("opsets", "%s", strings.Join(ops, ", "))
	for _, v := range s.Inputs {
		row("input", "%s %s %s", v.Name, v.Type, shapeString(v.Shape))
	}
	for _, v := range s.Outputs {
		row("output", "%s %s %s", v.Name, v.Type, shapeString(v.Shape))
	}
	row("nodes", "%d (%d in subgraphs)", s.Nodes, s.SubgraphNodes)
	var hist []string
	for _, oc := range s.SortedOps() {
		hist = append(hist, fmt.Sprintf("%s %d", oc.Op, oc.Count))
	}
	row("ops", "%s", strings.Join(hist, ", "))
	var types []string
	for t, c := range s.Params.ByType {
		types = append(types, fmt.Sprintf("%s %d (%s)", t, c.Elements, report.HumanBytes(c.Bytes)))
	}
	row("params", "%d in %d tensors, %s; %s; %d Constant nodes", s.Params.Count, s.Params.Tensors,
		report.HumanBytes(s.Params.Bytes), strings.Join(sortedCopy(types), ", "), s.Params.InConstantNodes)
	if len(s.ExternalData) > 0 {
		row("external", "%s", strings.Join(s.ExternalData, ", "))
	}
	row("quantized", "%s", s.Quantization)
	row("float16", "%v", s.Float16)
	switch rc := s.Runtime; {
	case rc == nil:
	case rc.Opens:
		row("onnxruntime", "opens it (%s)", rc.Version)
	default:
		row("onnxruntime", "does NOT open it: %s", rc.Error)
	}
}

func shapeString(shape []any) string {
	if shape == nil {
		return "(shape unknown)"
	}
	parts := make([]string, len(shape))
	for i, d := range shape {
		if d == nil {
			parts[i] = "?"
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func versionCmd(g *globals) *cobra.Command {
	var lib string
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the tool, Go and onnxruntime versions and the providers available",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tool := toolVersion()
			fmt.Fprintf(g.stdout, "onnxpipe %s (%s)\n", tool.Version, tool.Go)
			if err := ort.Init(lib); err != nil {
				fmt.Fprintf(g.stdout, "onnxruntime: not loaded: %v\n", err)
				return exit(ExitFailed, errSilent)
			}
			fmt.Fprintf(g.stdout, "onnxruntime %s\n  %-9s %s\n", ort.Version(), "library", libraryShown(ort.LibraryPath()))
			for _, p := range []ort.Provider{ort.CPU, ort.CUDA, ort.TensorRT} {
				if err := ort.ProviderAvailable(p); err != nil {
					fmt.Fprintf(g.stdout, "  %-9s unavailable: %v\n", p, trimProvider(err, p))
				} else {
					fmt.Fprintf(g.stdout, "  %-9s available\n", p)
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&lib, "ort-lib", "", ortLibUsage)
	return c
}

// libraryShown is the loaded library's path as version prints it: a bare file name is
// the one the dynamic loader found on the system's library path.
func libraryShown(path string) string {
	switch {
	case path == "":
		return "(loaded by another package of this program)"
	case !filepath.IsAbs(path):
		return path + " (from the system's library path)"
	}
	return path
}

func trimProvider(err error, p ort.Provider) string {
	return strings.TrimPrefix(err.Error(), string(p)+" unavailable: ")
}

// sortedCopy returns s sorted (in place) for joining.
func sortedCopy(s []string) []string {
	sort.Strings(s)
	return s
}

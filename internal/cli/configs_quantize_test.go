package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// TestQuantizeConfigs runs configs/quantize-static-npy.yaml (entropy calibration from
// the fixture's npy samples, int8 QDQ, verify) and configs/quantize-dynamic.yaml
// (dynamic int8 MatMul, verify on random data) end to end, their outputs redirected to
// a temporary folder.
func TestQuantizeConfigs(t *testing.T) {
	for _, tc := range []struct {
		config string
		sets   []string
		files  []string
		ops    []string // op types the artifact must hold
		gone   []string // op types it must not hold
	}{
		{
			config: "quantize-static-npy.yaml",
			sets:   []string{"stages.0.calibrate.cache={dir}/{name}.calib.json", "stages.0.calibrate.tensorrt_cache={dir}/{name}.trt-calib.txt"},
			files:  []string{"resnet_small.int8.onnx", "resnet_small.int8.manifest.json", "resnet_small.int8.report.json", "resnet_small.calib.json", "resnet_small.trt-calib.txt"},
			ops:    []string{"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"},
			gone:   []string{"BatchNormalization"},
		},
		{
			config: "quantize-dynamic.yaml",
			sets:   []string{"stages.2.verify.latency.runs=2"},
			files:  []string{"tiny_transformer.dynamic.onnx", "tiny_transformer.dynamic.manifest.json", "tiny_transformer.dynamic.report.json"},
			ops:    []string{"DynamicQuantizeLinear", "MatMulInteger"},
			gone:   []string{"QuantizeLinear"},
		},
	} {
		t.Run(tc.config, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, filepath.Base(tc.files[0]))
			out = strings.Replace(out, strings.SplitN(filepath.Base(tc.files[0]), ".", 2)[0], "{name}", 1)
			args := []string{"run", "--quiet", "../../configs/" + tc.config, "--set", "output=" + out}
			for _, s := range tc.sets {
				args = append(args, "--set", strings.ReplaceAll(s, "{dir}", dir))
			}
			code, stdout, stderr := runCLI(args...)
			if code != 0 || !strings.Contains(stdout, "1 ok") {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			for _, f := range tc.files {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("missing %s", f)
				}
			}
			m, err := onnxio.Load(filepath.Join(dir, tc.files[0]))
			if err != nil {
				t.Fatal(err)
			}
			ops := onnxio.Summarize(m).Ops
			for _, op := range tc.ops {
				if ops[op] == 0 {
					t.Errorf("artifact has no %s: %v", op, ops)
				}
			}
			for _, op := range tc.gone {
				if ops[op] != 0 {
					t.Errorf("artifact still has %s: %v", op, ops)
				}
			}
			rep, err := os.ReadFile(filepath.Join(dir, tc.files[2]))
			if err != nil || !strings.Contains(string(rep), "sqnr_db") || !strings.Contains(string(rep), "quantize") {
				t.Errorf("report lacks the quantize stage or the SQNR: %v", err)
			}
		})
	}
}

package ort

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Provider names an execution provider: where onnxruntime runs the graph.
type Provider string

// The execution providers a Session can use.
const (
	CPU      Provider = "cpu"      // onnxruntime's default CPU provider
	CUDA     Provider = "cuda"     // NVIDIA GPUs through CUDA
	TensorRT Provider = "tensorrt" // NVIDIA GPUs through TensorRT, with CUDA for what TensorRT leaves
)

// Providers lists the valid providers in the order ParseProvider's errors name them.
var Providers = []Provider{CPU, CUDA, TensorRT}

// Values lists the provider names (a config names providers by them).
func (Provider) Values() []string {
	out := make([]string, len(Providers))
	for i, p := range Providers {
		out[i] = string(p)
	}
	return out
}

// ParseProvider reads a provider name ("cpu", "cuda" or "tensorrt", in any case, with
// "trt" accepted for "tensorrt"); "" means cpu. Anything else is an error listing the
// valid names.
func ParseProvider(s string) (Provider, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "cpu":
		return CPU, nil
	case "cuda":
		return CUDA, nil
	case "tensorrt", "trt":
		return TensorRT, nil
	}
	return "", fmt.Errorf("unknown execution provider %q: use one of cpu, cuda, tensorrt", s)
}

// UnavailableError reports that an execution provider cannot be used here: its
// libraries do not load, or onnxruntime could not create a session on it (no device,
// driver mismatch, bad provider options). NewSession returns it, possibly wrapped; use
// errors.As to detect it and fall back to the CPU.
type UnavailableError struct {
	Provider Provider
	Reason   string
}

// Error returns "<provider> unavailable: <reason>".
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%s unavailable: %s", e.Provider, e.Reason)
}

// Options configures a Session. The zero value is onnxruntime's defaults on the CPU with
// every graph optimization enabled.
type Options struct {
	// Threads is the number of intra-op threads (parallelism inside one node);
	// 0 lets onnxruntime choose (one per physical core).
	Threads int
	// InterOpThreads, when above 0, switches onnxruntime to its parallel execution mode
	// (independent nodes run at the same time) with that many threads; 0 keeps the
	// default sequential mode.
	InterOpThreads int
	// Optimization is the graph optimization level: "none", "basic", "extended" or
	// "all"; "" means "all".
	Optimization string
	// Provider is the execution provider; "" means CPU.
	Provider Provider
	// ProviderOptions are passed to the CUDA or TensorRT provider as they are (for
	// example device_id, gpu_mem_limit, trt_fp16_enable, trt_engine_cache_enable).
	// For TensorRT, the CUDA provider registered behind it gets device_id only. The CPU
	// provider ignores them.
	ProviderOptions map[string]string
	// OptimizedModelPath, when set, is where onnxruntime writes the graph it optimized
	// while creating the session (ONNX format; ORT format if the name ends in .ort). The
	// folder must exist.
	OptimizedModelPath string
	// DisableCPUFallback makes session creation fail, instead of quietly running nodes on
	// the CPU, when the chosen GPU provider cannot take every node. It has no effect
	// with the CPU provider.
	DisableCPUFallback bool
	// NoSpinning makes onnxruntime's idle pool threads sleep at once instead of spinning
	// while they wait for work: for a caller that computes on the same cores between or
	// during runs (calibration folds one batch while the next runs), where spinning
	// threads would take the cores from it.
	NoSpinning bool
}

// optimizationLevel maps Options.Optimization to onnxruntime's level.
func optimizationLevel(s string) (ortgo.GraphOptimizationLevel, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "all":
		return ortgo.GraphOptimizationLevelEnableAll, nil
	case "extended":
		return ortgo.GraphOptimizationLevelEnableExtended, nil
	case "basic":
		return ortgo.GraphOptimizationLevelEnableBasic, nil
	case "none", "disable", "disabled":
		return ortgo.GraphOptimizationLevelDisableAll, nil
	}
	return 0, fmt.Errorf("unknown optimization level %q: use one of none, basic, extended, all", s)
}

// check validates o without touching onnxruntime and returns the provider to use.
func (o *Options) check() (Provider, error) {
	p, err := ParseProvider(string(o.Provider))
	if err != nil {
		return "", err
	}
	if o.Threads < 0 {
		return "", fmt.Errorf("threads is %d: use 0 for onnxruntime's default or a positive count", o.Threads)
	}
	if o.InterOpThreads < 0 {
		return "", fmt.Errorf("inter-op threads is %d: use 0 for the default sequential execution or a positive count", o.InterOpThreads)
	}
	if _, err := optimizationLevel(o.Optimization); err != nil {
		return "", err
	}
	if o.OptimizedModelPath != "" {
		dir := filepath.Dir(o.OptimizedModelPath)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("optimized model path %s: folder %s does not exist: create it first", o.OptimizedModelPath, dir)
		}
	}
	return p, nil
}

// sessionOptions builds onnxruntime session options from o (already checked). When
// optimizedPath is not empty, onnxruntime writes the optimized graph there. A provider
// that cannot be appended gives an *UnavailableError. The caller destroys the result.
func (o *Options) sessionOptions(p Provider, optimizedPath string) (*ortgo.SessionOptions, error) {
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("create onnxruntime session options: %s", oneLine(err.Error()))
	}
	fail := func(what string, err error) (*ortgo.SessionOptions, error) {
		so.Destroy()
		return nil, fmt.Errorf("%s: %s", what, oneLine(err.Error()))
	}
	if o.Threads > 0 {
		if err := so.SetIntraOpNumThreads(o.Threads); err != nil {
			return fail("set intra-op threads", err)
		}
	}
	if o.InterOpThreads > 0 {
		if err := so.SetExecutionMode(ortgo.ExecutionModeParallel); err != nil {
			return fail("set parallel execution mode", err)
		}
		if err := so.SetInterOpNumThreads(o.InterOpThreads); err != nil {
			return fail("set inter-op threads", err)
		}
	}
	if o.NoSpinning {
		for _, key := range []string{"session.intra_op.allow_spinning", "session.inter_op.allow_spinning"} {
			if err := so.AddSessionConfigEntry(key, "0"); err != nil {
				return fail("turn off spinning", err)
			}
		}
	}
	level, _ := optimizationLevel(o.Optimization)
	if err := so.SetGraphOptimizationLevel(level); err != nil {
		return fail("set graph optimization level", err)
	}
	if optimizedPath != "" {
		if err := so.SetOptimizedModelFilePath(optimizedPath); err != nil {
			return fail("set optimized model path", err)
		}
	}
	if p != CPU {
		if o.DisableCPUFallback {
			if err := so.AddSessionConfigEntry("session.disable_cpu_ep_fallback", "1"); err != nil {
				return fail("disable CPU fallback", err)
			}
		}
		if err := appendProvider(so, p, o.ProviderOptions); err != nil {
			so.Destroy()
			return nil, err
		}
	}
	return so, nil
}

// appendProvider registers provider p (CUDA or TensorRT) on so; any failure is an
// *UnavailableError, since with onnxruntime's provider bridge even setting options loads
// the provider's library.
func appendProvider(so *ortgo.SessionOptions, p Provider, options map[string]string) error {
	switch p {
	case CUDA:
		if err := appendCUDA(so, options); err != nil {
			return unavailable(p, err)
		}
	case TensorRT:
		if err := appendTensorRT(so, options); err != nil {
			return unavailable(p, err)
		}
		// Let CUDA take the nodes TensorRT cannot, as onnxruntime recommends; without
		// it they run on the CPU, which still works.
		cudaOptions := map[string]string{}
		if id, ok := options["device_id"]; ok {
			cudaOptions["device_id"] = id
		}
		_ = appendCUDA(so, cudaOptions)
	}
	return nil
}

func appendCUDA(so *ortgo.SessionOptions, options map[string]string) error {
	co, err := ortgo.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer co.Destroy()
	if err := co.Update(options); err != nil {
		return err
	}
	return so.AppendExecutionProviderCUDA(co)
}

func appendTensorRT(so *ortgo.SessionOptions, options map[string]string) error {
	to, err := ortgo.NewTensorRTProviderOptions()
	if err != nil {
		return err
	}
	defer to.Destroy()
	if err := to.Update(options); err != nil {
		return err
	}
	return so.AppendExecutionProviderTensorRT(to)
}

func unavailable(p Provider, err error) *UnavailableError {
	reason := oneLine(err.Error())
	if strings.Contains(strings.ToLower(reason), "failed to load") {
		lib := "libonnxruntime_providers_cuda"
		if p == TensorRT {
			lib = "libonnxruntime_providers_tensorrt"
		}
		reason += fmt.Sprintf(": install onnxruntime's GPU build (libonnxruntime_providers_shared and %s with their CUDA libraries) beside %s, or use the cpu provider", lib, LibraryName())
	} else {
		reason += ": check the GPU, its driver and the provider options, or use the cpu provider"
	}
	return &UnavailableError{Provider: p, Reason: reason}
}

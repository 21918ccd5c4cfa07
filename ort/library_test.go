package ort

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeLib creates dir/third_party/onnxruntime/<LibraryName()> and returns its path.
func fakeLib(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "third_party", "onnxruntime", LibraryName())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("not really a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFindLibraryExplicitAndEnv(t *testing.T) {
	root := t.TempDir()
	a := fakeLib(t, filepath.Join(root, "a"))
	b := fakeLib(t, filepath.Join(root, "b"))

	t.Setenv(EnvLibrary, b)
	if got, err := FindLibrary(a); err != nil || got != a {
		t.Errorf("explicit: got %q, %v; want %q", got, err, a)
	}
	if got, err := FindLibrary(""); err != nil || got != b {
		t.Errorf("env: got %q, %v; want %q", got, err, b)
	}

	missing := filepath.Join(root, "nope", "libonnxruntime.so")
	if _, err := FindLibrary(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing explicit path: error %v should name %s", err, missing)
	}
	t.Setenv(EnvLibrary, missing)
	_, err := FindLibrary("")
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), EnvLibrary) {
		t.Errorf("missing env path: error %v should name %s and %s", err, missing, EnvLibrary)
	}
	// An explicit path still wins over a broken variable.
	if got, err := FindLibrary(a); err != nil || got != a {
		t.Errorf("explicit over broken env: got %q, %v", got, err)
	}
	if _, err := FindLibrary(filepath.Dir(a)); err == nil || !strings.Contains(err.Error(), "folder") {
		t.Errorf("folder as library: error %v", err)
	}
}

func TestFindLibraryWalksUpFromWorkingFolder(t *testing.T) {
	root := t.TempDir()
	want := fakeLib(t, root)
	deep := filepath.Join(root, "x", "y", "z")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvLibrary, "")
	t.Chdir(deep)
	got, err := FindLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	if canonical(got) != canonical(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFindLibraryOrder(t *testing.T) {
	root := t.TempDir()
	exeDir := filepath.Join(root, "app", "bin")
	wd := filepath.Join(root, "work", "pkg")
	sys := filepath.Join(root, "sys")
	for _, d := range []string{exeDir, wd, sys} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	find := func() string {
		t.Helper()
		got, err := findLibrary("", "", exeDir, wd, []string{sys})
		if err != nil {
			return "error: " + err.Error()
		}
		return got
	}

	if got := find(); got != "error: "+errNotFound.Error() {
		t.Errorf("nothing anywhere: got %q", got)
	}
	if !strings.Contains(errNotFound.Error(), "make ort") || !strings.Contains(errNotFound.Error(), EnvLibrary) {
		t.Errorf("not-found error %q should say to run make ort or set %s", errNotFound, EnvLibrary)
	}

	// System library path: the bare name, for the dynamic loader.
	if err := os.WriteFile(filepath.Join(sys, LibraryName()), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := find(); got != LibraryName() {
		t.Errorf("system folder: got %q, want %q", got, LibraryName())
	}
	// A parent of the working folder beats the system.
	up := fakeLib(t, filepath.Join(root, "work"))
	if got := find(); got != up {
		t.Errorf("working folder's parent: got %q, want %q", got, up)
	}
	// The working folder beats its parent.
	here := fakeLib(t, wd)
	if got := find(); got != here {
		t.Errorf("working folder: got %q, want %q", got, here)
	}
	// The executable's parent (a binary in bin/) beats the working folder.
	parent := fakeLib(t, filepath.Join(root, "app"))
	if got := find(); got != parent {
		t.Errorf("executable's parent: got %q, want %q", got, parent)
	}
	// Beside the executable beats its parent.
	beside := fakeLib(t, exeDir)
	if got := find(); got != beside {
		t.Errorf("beside the executable: got %q, want %q", got, beside)
	}
	// The variable beats all of those, and an explicit path beats the variable.
	env := fakeLib(t, filepath.Join(root, "env"))
	if got, err := findLibrary("", env, exeDir, wd, []string{sys}); err != nil || got != env {
		t.Errorf("variable: got %q, %v", got, err)
	}
	explicit := fakeLib(t, filepath.Join(root, "explicit"))
	if got, err := findLibrary(explicit, env, exeDir, wd, []string{sys}); err != nil || got != explicit {
		t.Errorf("explicit: got %q, %v", got, err)
	}
}

func TestInitOnce(t *testing.T) {
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = Init("")
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Init call %d: %v", i, err)
		}
	}
	path := LibraryPath()
	if path == "" {
		t.Fatal("LibraryPath is empty after Init")
	}
	if err := Init(path); err != nil {
		t.Errorf("Init with the loaded path: %v", err)
	}
	other := fakeLib(t, t.TempDir())
	if err := Init(other); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("Init with another library: %v", err)
	}
	if err := Init(""); err != nil {
		t.Errorf("Init(\"\") after all that: %v", err)
	}
}

func TestVersion(t *testing.T) {
	initORT(t)
	v := Version()
	if !strings.HasPrefix(v, "1.") {
		t.Errorf("Version() = %q", v)
	}
	// When the library is the repository's, its VERSION file says which it is.
	if want, err := os.ReadFile(filepath.Join(filepath.Dir(LibraryPath()), "VERSION")); err == nil {
		if strings.TrimSpace(string(want)) != v {
			t.Errorf("Version() = %q, VERSION file says %q", v, strings.TrimSpace(string(want)))
		}
	}
}

func TestAvailableProviders(t *testing.T) {
	initORT(t)
	got, err := AvailableProviders()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[len(got)-1] != "CPUExecutionProvider" {
		t.Errorf("AvailableProviders() = %v, want CPUExecutionProvider last", got)
	}
	t.Log(got)
}

func TestParseProvider(t *testing.T) {
	for in, want := range map[string]Provider{"": CPU, "cpu": CPU, "CUDA": CUDA, " tensorrt ": TensorRT, "trt": TensorRT} {
		if got, err := ParseProvider(in); err != nil || got != want {
			t.Errorf("ParseProvider(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParseProvider("rocm")
	if err == nil || !strings.Contains(err.Error(), `"rocm"`) || !strings.Contains(err.Error(), "cpu, cuda, tensorrt") {
		t.Errorf("ParseProvider(rocm): %v", err)
	}
}

func TestUnavailableError(t *testing.T) {
	var err error = &UnavailableError{Provider: CUDA, Reason: "no device"}
	if err.Error() != "cuda unavailable: no device" {
		t.Errorf("Error() = %q", err)
	}
	var ue *UnavailableError
	if !errors.As(errors.Join(errors.New("context"), err), &ue) || ue.Provider != CUDA {
		t.Error("errors.As does not find a wrapped *UnavailableError")
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"/onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:1988 onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : Failed to load library x.so with error: x.so: cannot open\nshared object file.":                                                                                                                         "Failed to load library x.so with error: x.so: cannot open shared object file",
		"Non-zero status code returned while running Reshape node. Name:'' Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/tensor/reshape_helper.h:91 onnxruntime::ReshapeHelper::ReshapeHelper(const onnxruntime::TensorShape&, onnxruntime::TensorShapeVector&, bool) input_shape_size == requested_shape_size was false. The input tensor cannot be reshaped.": "Non-zero status code returned while running Reshape node. Name:'' Status Message: input_shape_size == requested_shape_size was false. The input tensor cannot be reshaped",
		"Exception during initialization: /onnxruntime_src/a/b.cc:264 onnxruntime::common::Status ns::f(const std::function<void(int)>&, int) idx > -1 was false.":                                                                                                                                                                                                                "Exception during initialization: idx > -1 was false",
		"plain message": "plain message",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}

// The failure tests need a process whose Init has not run yet: they run this test binary
// again with ORT_TEST_CHILD set.
const childEnv = "ORT_TEST_CHILD"

func TestInitFailureIsRemembered(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		return // only the parent runs this
	}
	notALib := filepath.Join(t.TempDir(), LibraryName())
	if err := os.WriteFile(notALib, []byte("not a shared library"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, lib := range map[string]string{
		"missing file":  filepath.Join(t.TempDir(), "gone", LibraryName()),
		"not a library": notALib,
		"not found":     "",
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestInitFailureChild$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"=1", EnvLibrary+"="+lib)
			if lib == "" { // nothing set and nothing found: the working folder has no third_party
				cmd.Dir = t.TempDir()
				cmd.Env = append(cmd.Env, "LD_LIBRARY_PATH=", "DYLD_LIBRARY_PATH=")
			}
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "CHILD OK") {
				t.Errorf("child failed: %v\n%s", err, out)
			}
		})
	}
}

func TestInitFailureChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		return // it runs in the child process of TestInitFailureIsRemembered
	}
	lib := os.Getenv(EnvLibrary)
	first := Init("")
	if first == nil {
		if lib == "" && LibraryPath() == LibraryName() {
			t.Log("CHILD OK (the system library path has onnxruntime)")
			return
		}
		t.Fatalf("Init succeeded with %s=%q", EnvLibrary, lib)
	}
	if lib != "" && !strings.Contains(first.Error(), lib) {
		t.Errorf("error %q does not name %s", first, lib)
	}
	if lib == "" && first.Error() != errNotFound.Error() {
		t.Errorf("error %q, want %q", first, errNotFound)
	}
	if strings.Contains(first.Error(), "\n") {
		t.Errorf("error %q spans lines", first)
	}
	if again := Init(""); again == nil || again.Error() != first.Error() {
		t.Errorf("second Init: %v, want the first error %v", again, first)
	}
	here, _ := os.Getwd()
	if again := Init(filepath.Join(here, "other.so")); again == nil || again.Error() != first.Error() {
		t.Errorf("Init with another path: %v, want the first error %v", again, first)
	}
	if _, err := NewSession([]byte{1}, Options{}); err == nil || err.Error() != first.Error() {
		t.Errorf("NewSession: %v, want the Init error", err)
	}
	if _, err := AvailableProviders(); err == nil {
		t.Error("AvailableProviders succeeded without a library")
	}
	if Version() != "" || LibraryPath() != "" {
		t.Errorf("Version() = %q, LibraryPath() = %q after a failed Init", Version(), LibraryPath())
	}
	t.Log("CHILD OK")
}

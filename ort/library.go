package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"
)

// EnvLibrary is the environment variable that names onnxruntime's shared library.
const EnvLibrary = "ONNXPIPE_ORT_LIB"

// errNotFound is what FindLibrary returns when no candidate exists.
var errNotFound = errors.New("onnxruntime library not found: run `make ort` or set " + EnvLibrary)

// LibraryName is the file name of onnxruntime's shared library on this platform
// (libonnxruntime.so, libonnxruntime.dylib on macOS, onnxruntime.dll on Windows).
func LibraryName() string {
	switch runtime.GOOS {
	case "darwin", "ios":
		return "libonnxruntime.dylib"
	case "windows":
		return "onnxruntime.dll"
	}
	return "libonnxruntime.so"
}

// FindLibrary returns the path of onnxruntime's shared library to load.
//
// It tries, in order: explicit when it is not empty; $ONNXPIPE_ORT_LIB when set;
// third_party/onnxruntime/<LibraryName()> beside the running executable and in the
// executable's parent folder (for a binary in bin/); the same relative path in the working
// folder and in each of its parents up to the filesystem root (so `go test` in a package
// folder finds the repository's copy); and last the bare library name when the system's
// library path (LD_LIBRARY_PATH or DYLD_LIBRARY_PATH, then the usual system folders)
// holds it, so that the dynamic loader resolves it. Found paths are absolute.
//
// A path given explicitly or by the variable that does not exist is an error naming it;
// when nothing is found the error says to run `make ort` or set ONNXPIPE_ORT_LIB.
func FindLibrary(explicit string) (string, error) {
	var exeDir string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		exeDir = filepath.Dir(exe)
	}
	wd, _ := os.Getwd()
	return findLibrary(explicit, os.Getenv(EnvLibrary), exeDir, wd, systemLibraryDirs())
}

// findLibrary is FindLibrary with its inputs spelled out, for tests.
func findLibrary(explicit, env, exeDir, wd string, sysDirs []string) (string, error) {
	if explicit != "" {
		return existingFile(explicit, "onnxruntime library")
	}
	if env != "" {
		return existingFile(env, "onnxruntime library named by "+EnvLibrary)
	}
	rel := filepath.Join("third_party", "onnxruntime", LibraryName())
	var candidates []string
	if exeDir != "" {
		candidates = append(candidates, filepath.Join(exeDir, rel), filepath.Join(filepath.Dir(exeDir), rel))
	}
	if wd != "" {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, rel))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, c := range candidates {
		if isFile(c) {
			if abs, err := filepath.Abs(c); err == nil {
				return abs, nil
			}
			return c, nil
		}
	}
	for _, dir := range sysDirs {
		if dir != "" && isFile(filepath.Join(dir, LibraryName())) {
			return LibraryName(), nil
		}
	}
	return "", errNotFound
}

func existingFile(path, what string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s %s does not exist: fix the path, or run `make ort` and leave it unset", what, path)
		}
		return "", fmt.Errorf("%s %s: %v", what, path, err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("%s %s is a folder: give the path of %s itself", what, path, LibraryName())
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs, nil
	}
	return path, nil
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}

// systemLibraryDirs lists the folders the dynamic loader searches, as far as they can be
// known without asking it: the loader's path variable, then the usual system folders.
func systemLibraryDirs() []string {
	var dirs []string
	switch runtime.GOOS {
	case "darwin", "ios":
		dirs = append(dirs, filepath.SplitList(os.Getenv("DYLD_LIBRARY_PATH"))...)
		dirs = append(dirs, filepath.SplitList(os.Getenv("DYLD_FALLBACK_LIBRARY_PATH"))...)
		dirs = append(dirs, "/opt/homebrew/lib", "/usr/local/lib", "/usr/lib")
	case "windows":
		dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	default:
		dirs = append(dirs, filepath.SplitList(os.Getenv("LD_LIBRARY_PATH"))...)
		dirs = append(dirs, "/usr/local/lib", "/usr/local/lib64", "/usr/lib", "/usr/lib64", "/lib", "/lib64")
		for _, triple := range []string{"x86_64-linux-gnu", "aarch64-linux-gnu"} {
			dirs = append(dirs, "/usr/lib/"+triple, "/lib/"+triple)
		}
	}
	return dirs
}

// lib is the process-wide state of the onnxruntime environment.
var lib struct {
	mu   sync.Mutex
	done bool   // Init has run (successfully or not)
	path string // the library that was loaded
	err  error  // Init's failure, returned again to every later caller
}

// Init loads onnxruntime's shared library and creates its environment, once per process;
// it is safe for concurrent callers, who all wait for the first to finish. libPath ""
// means FindLibrary(""). Once the environment exists, Init("") and Init of the same path
// return nil, and Init of a different path is an error (a process holds one onnxruntime).
// A failure is remembered and returned again by every later call. onnxruntime's own
// logging is limited to fatal messages; its errors come back as Go errors.
//
// NewSession and AvailableProviders call Init("") themselves when Init has not run.
func Init(libPath string) error {
	lib.mu.Lock()
	defer lib.mu.Unlock()
	if lib.done {
		if lib.err != nil {
			return lib.err
		}
		if libPath != "" && !samePath(libPath, lib.path) {
			return fmt.Errorf("onnxruntime is already loaded from %s, and a process can hold only one: drop the second library path %s", lib.path, libPath)
		}
		return nil
	}
	lib.done = true
	if ortgo.IsInitialized() { // someone in this process set onnxruntime_go up directly
		lib.path = libPath
		return nil
	}
	path, err := FindLibrary(libPath)
	if err != nil {
		lib.err = err
		return err
	}
	ortgo.SetSharedLibraryPath(path)
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelFatal()); err != nil {
		lib.err = fmt.Errorf("load onnxruntime from %s: %s: use onnxruntime 1.24 or newer built for %s/%s (`make ort` installs 1.30.0), or set %s",
			path, oneLine(err.Error()), runtime.GOOS, runtime.GOARCH, EnvLibrary)
		return lib.err
	}
	_ = ortgo.DisableTelemetry() // best effort; telemetry is off on most builds anyway
	lib.path = path
	return nil
}

// ensureInit initialises the environment from the default library unless Init ran.
func ensureInit() error {
	lib.mu.Lock()
	done, err := lib.done, lib.err
	lib.mu.Unlock()
	if done {
		return err
	}
	return Init("")
}

func samePath(a, b string) bool {
	return canonical(a) == canonical(b)
}

func canonical(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	return filepath.Clean(p)
}

// LibraryPath returns the path of the onnxruntime library that Init loaded ("" before a
// successful Init). A bare name means the system's dynamic loader found it.
func LibraryPath() string {
	lib.mu.Lock()
	defer lib.mu.Unlock()
	if !lib.done || lib.err != nil {
		return ""
	}
	return lib.path
}

// Version returns the loaded onnxruntime's version string (such as "1.30.0"), or "" when
// Init has not succeeded.
func Version() string {
	lib.mu.Lock()
	defer lib.mu.Unlock()
	if !lib.done || lib.err != nil {
		return ""
	}
	return ortgo.GetVersion()
}

// Execution provider names as onnxruntime spells them.
const (
	cpuProviderName      = "CPUExecutionProvider"
	cudaProviderName     = "CUDAExecutionProvider"
	tensorRTProviderName = "TensorrtExecutionProvider"
)

var providerProbe struct {
	once  sync.Once
	names []string
}

// AvailableProviders returns the execution providers this onnxruntime can use, in
// onnxruntime's priority order and spelling (for example ["CUDAExecutionProvider",
// "CPUExecutionProvider"]); CPUExecutionProvider is always there.
//
// onnxruntime_go v1.27 does not expose onnxruntime's GetAvailableProviders, which in any
// case lists what the library was compiled with rather than what can load. So each GPU
// provider is probed instead: it counts as available when onnxruntime accepts it on a
// throwaway set of session options, which is when its provider libraries load. A
// session can still fail on a machine without a usable device; NewSession then returns
// an *UnavailableError. The probe runs once per process.
func AvailableProviders() ([]string, error) {
	if err := ensureInit(); err != nil {
		return nil, err
	}
	providerProbe.once.Do(func() {
		var names []string
		if probeProvider(TensorRT) == nil {
			names = append(names, tensorRTProviderName)
		}
		if probeProvider(CUDA) == nil {
			names = append(names, cudaProviderName)
		}
		providerProbe.names = append(names, cpuProviderName)
	})
	return append([]string(nil), providerProbe.names...), nil
}

// ProviderAvailable returns nil when provider p can be appended to session options (its
// libraries load), else an *UnavailableError saying why. CPU is always available.
func ProviderAvailable(p Provider) error {
	if err := ensureInit(); err != nil {
		return err
	}
	if p == CPU || p == "" {
		return nil
	}
	return probeProvider(p)
}

func probeProvider(p Provider) error {
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return err
	}
	defer so.Destroy()
	return appendProvider(so, p, nil)
}

// oneLine trims an onnxruntime message to one line, without the source locations,
// C++ signatures and status codes that onnxruntime puts before its text.
func oneLine(msg string) string {
	const marker = "[ONNXRuntimeError]"
	if i := strings.LastIndex(msg, marker); i >= 0 {
		// "/onnxruntime_src/.../x.cc:12 f() [ONNXRuntimeError] : 1 : FAIL : text"
		if parts := strings.SplitN(msg[i+len(marker):], " : ", 4); len(parts) == 4 {
			msg = parts[3]
		}
	}
	// "/onnxruntime_src/.../x.h:91 ns::Class::f(const T&, bool) text"
	for {
		loc := sourceLocation.FindStringIndex(msg)
		if loc == nil {
			break
		}
		rest := msg[loc[1]:]
		msg = msg[:loc[0]] + strings.TrimLeft(rest[signatureEnd(rest):], " ")
	}
	msg = strings.Join(strings.Fields(msg), " ")
	return strings.TrimSuffix(msg, ".")
}

var sourceLocation = regexp.MustCompile(`\S*onnxruntime_src/\S+:\d+ `)

// signatureEnd returns the length of the C++ function signature s starts with: up to the
// parenthesis that closes its parameter list (0 when there is none).
func signatureEnd(s string) int {
	open := strings.IndexByte(s, '(')
	if open < 0 {
		return 0
	}
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return 0
}

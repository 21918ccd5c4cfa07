package ort

import (
	"reflect"
	"runtime/debug"
	"slices"
	"unsafe"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// Opening a model used to take two onnxruntime sessions: a temporary one, which
// onnxruntime_go's GetInputOutputInfoWithONNXData creates to list the inputs and outputs
// with their types and shapes, then the real one, which needs their names (ResNet-18:
// 105-110 ms for both against 65 ms for one, BenchmarkNewSession's resnet_small 5.2
// against 2.7 ms). openDirect creates the real session at once with the
// names the model's protobuf declares and asks that session for the same information,
// through onnxruntime_go's own function for it (getInputOutputInfoFromCSession, which
// it exports no wrapper for: reached by go:linkname, the session's C handle read by
// reflection). Whatever does not check out (another onnxruntime_go layout, inputs that
// are not the protobuf's) makes the caller take the two-session way.

// directVersion is the onnxruntime_go release whose unexported
// getInputOutputInfoFromCSession and session layout openDirect was checked against. A
// linkname'd function's signature is not checked by the compiler, so with another release
// (or a replace) the direct way stays off: TestDirectVersionPinned fails when go.mod
// moves, as a reminder to check them again.
const directVersion = "v1.27.0"

func init() { directOpen = linkedVersionOK() }

// linkedVersionOK reports whether this binary links onnxruntime_go at directVersion.
// Test binaries record no dependencies: they build with go.mod's version, which
// TestDirectVersionPinned checks.
func linkedVersionOK() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return true
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/yalue/onnxruntime_go" {
			return d.Replace == nil && d.Version == directVersion
		}
	}
	return true
}

//go:linkname ortSessionIO github.com/yalue/onnxruntime_go.getInputOutputInfoFromCSession
func ortSessionIO(s unsafe.Pointer) ([]ortgo.InputOutputInfo, []ortgo.InputOutputInfo, error)

// cSession returns the C session handle of s, or nil when onnxruntime_go's layout is
// not the one this was written for (v1.27: DynamicAdvancedSession.s.ortSession).
func cSession(s *ortgo.DynamicAdvancedSession) unsafe.Pointer {
	v := reflect.ValueOf(s).Elem()
	if v.Kind() != reflect.Struct {
		return nil
	}
	inner := v.FieldByName("s")
	if !inner.IsValid() || inner.Kind() != reflect.Pointer || inner.IsNil() {
		return nil
	}
	h := inner.Elem().FieldByName("ortSession")
	if !h.IsValid() || h.Kind() != reflect.Pointer || h.IsNil() {
		return nil
	}
	return h.UnsafePointer()
}

// openDirect creates a session on model with the inputs (graph inputs that are not
// initializers) and outputs its protobuf declares, and returns it with onnxruntime's
// view of them. ok is false, and nothing is left open, when the session cannot be made
// this way or onnxruntime lists other inputs or outputs.
func openDirect(model []byte, mi *modelInfo, so *ortgo.SessionOptions) (sess *ortgo.DynamicAdvancedSession, ins, outs []ortgo.InputOutputInfo, ok bool) {
	var inNames []string
	for _, n := range mi.inputs {
		if !mi.inits[n] {
			inNames = append(inNames, n)
		}
	}
	if len(inNames) == 0 || len(mi.outputs) == 0 {
		return nil, nil, nil, false // the long way adds a dummy input, or reports the error
	}
	sess, err := ortgo.NewDynamicAdvancedSessionWithONNXData(model, inNames, mi.outputs, so)
	if err != nil {
		return nil, nil, nil, false
	}
	h := cSession(sess)
	if h != nil {
		ins, outs, err = ortSessionIO(h)
	}
	names := func(infos []ortgo.InputOutputInfo) []string {
		n := make([]string, len(infos))
		for i, io := range infos {
			n[i] = io.Name
		}
		return n
	}
	if h == nil || err != nil || !slices.Equal(names(ins), inNames) || !slices.Equal(names(outs), mi.outputs) {
		sess.Destroy()
		return nil, nil, nil, false
	}
	return sess, ins, outs, true
}

// needsFetchNodes reports whether the protobuf already shows that an output needs fetch
// nodes (a float16 or bfloat16 output, or a scalar), so that a direct session could not
// serve and would only be opened to be closed.
func needsFetchNodes(mi *modelInfo) bool {
	for _, name := range mi.outputs {
		t := mi.values[name].GetType().GetTensorType()
		if t == nil {
			continue
		}
		dt := onnxio.DataType(t.GetElemType())
		if dt == onnxio.TypeFloat16 || dt == onnxio.TypeBFloat16 || t.GetShape() != nil && len(t.GetShape().GetDim()) == 0 {
			return true
		}
	}
	return false
}

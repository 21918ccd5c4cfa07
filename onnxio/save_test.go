package onnxio

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

func TestSaveInline(t *testing.T) {
	m := mlpModel(t)
	before := proto.Clone(m.Proto)
	dir := t.TempDir()
	path := filepath.Join(dir, "out", "mlp.onnx") // Save creates the folder
	if err := m.Save(path, SaveOptions{}); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if !proto.Equal(m.Proto, before) || m.Path != "" || m.Dir != "" {
		t.Errorf("Save changed the model in memory (Path=%q Dir=%q)", m.Path, m.Dir)
	}
	if got := listDir(t, filepath.Dir(path)); !reflect.DeepEqual(got, []string{"mlp.onnx"}) {
		t.Errorf("folder after Save holds %q", got)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !proto.Equal(back.Proto, m.Proto) {
		t.Errorf("model differs after a round trip")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("saved model has mode %v, want 0644", st.Mode().Perm())
	}

	// Saving over an existing model replaces it.
	m.Proto.ProducerName = proto.String("second")
	if err := m.Save(path, SaveOptions{External: ExternalNever}); err != nil {
		t.Fatalf("second Save: %v", err)
	}
	back, err = Load(path)
	if err != nil || back.Proto.GetProducerName() != "second" {
		t.Errorf("second Save: producer %q, %v", back.Proto.GetProducerName(), err)
	}
	noTempFiles(t, dir, "inline save")
}

// externalTestModel is mlpModel with extra tensors that exercise Save's external path:
// a typed-field initializer (float_data) above the threshold, a tiny one below it, a
// Constant node holding a big tensor, a tensor inside an If subgraph, a string tensor
// and an initializer whose data_location is explicitly DEFAULT.
func externalTestModel(t *testing.T) *Model {
	t.Helper()
	m := mlpModel(t)
	g := m.Graph()
	typed := &onnxpb.TensorProto{Name: proto.String("T_typed"), DataType: proto.Int32(int32(TypeFloat)), Dims: []int64{40}}
	for i := range 40 {
		typed.FloatData = append(typed.FloatData, float32(i)*1.5)
	}
	small := floatInit(t, "T_small", 2)
	explicit := floatInit(t, "T_explicit", 32)
	explicit.DataLocation = onnxpb.TensorProto_DEFAULT.Enum()
	strs, err := EncodeTensor("T_str", NewTensor([]int64{2}, []string{"a", "b"}))
	if err != nil {
		t.Fatal(err)
	}
	g.Initializer = append(g.Initializer, typed, small, explicit, strs)
	sub := &onnxpb.GraphProto{
		Name:        proto.String("then"),
		Initializer: []*onnxpb.TensorProto{floatInit(t, "T_sub", 64)},
		Node:        []*onnxpb.NodeProto{node("sub_id", "Identity", []string{"T_sub"}, []string{"sub_out"})},
		Output:      []*onnxpb.ValueInfoProto{ValueInfo("sub_out", TypeFloat, []int64{64})},
	}
	g.Node = append(g.Node,
		node("big_const", "Constant", nil, []string{"C_big"}, AttrTensor("value", floatInit(t, "C_big", 50))),
		node("cond_const", "Constant", nil, []string{"cond"}, AttrTensor("value", mustEncode(t, "cond", NewTensor([]int64{}, []bool{true})))),
		node("if", "If", []string{"cond"}, []string{"if_out"}, AttrGraph("then_branch", sub), AttrGraph("else_branch", proto.Clone(sub).(*onnxpb.GraphProto))),
	)
	return m
}

func mustEncode(t testing.TB, name string, tt *Tensor) *onnxpb.TensorProto {
	t.Helper()
	tp, err := EncodeTensor(name, tt)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestSaveExternal(t *testing.T) {
	for _, test := range []struct {
		name      string
		opts      SaveOptions
		dataFile  string
		wantMoved []string // tensors stored outside
	}{
		{
			name:      "threshold 100",
			opts:      SaveOptions{External: ExternalAlways, Threshold: 100},
			dataFile:  freshData,
			wantMoved: []string{"W1", "W2", "T_typed", "T_explicit", "C_big", "T_sub", "T_sub"},
		},
		{
			name:      "default threshold",
			opts:      SaveOptions{External: ExternalAlways},
			dataFile:  freshData,
			wantMoved: nil, // nothing reaches 1024 bytes
		},
		{
			name:      "every tensor",
			opts:      SaveOptions{External: ExternalAlways, Threshold: ThresholdAll},
			dataFile:  freshData,
			wantMoved: []string{"W1", "B1", "W2", "T_typed", "T_small", "T_explicit", "C_big", "cond", "T_sub", "T_sub"},
		},
		{
			name:      "threshold 1, custom location in a sub folder",
			opts:      SaveOptions{External: ExternalAlways, Threshold: 1, Location: "weights/w.bin"},
			dataFile:  "weights/w.bin",
			wantMoved: []string{"W1", "B1", "W2", "T_typed", "T_small", "T_explicit", "C_big", "cond", "T_sub", "T_sub"},
		},
	} {
		m := externalTestModel(t)
		before := proto.Clone(m.Proto)
		dir := t.TempDir()
		path := filepath.Join(dir, "model.onnx")
		if err := m.Save(path, test.opts); err != nil {
			t.Fatalf("%s: Save: %v", test.name, err)
		}
		if !proto.Equal(m.Proto, before) {
			t.Errorf("%s: Save changed the model in memory", test.name)
		}
		noTempFiles(t, dir, test.name)

		// Inspect the file as written: which tensors point outside, and where.
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var onDisk onnxpb.ModelProto
		if err := proto.Unmarshal(raw, &onDisk); err != nil {
			t.Fatal(err)
		}
		var moved []string
		dataFile := test.dataFile
		WalkTensors(&onDisk, func(tp *onnxpb.TensorProto, _ string) bool {
			if tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
				return true
			}
			moved = append(moved, tp.GetName())
			ref, err := ParseExternalRef(tp)
			if err != nil {
				t.Errorf("%s: %v", test.name, err)
				return true
			}
			if dataFile == freshData {
				dataFile = freshDataName(t, dir, "model.onnx", ref.Location)
			}
			if ref.Location != dataFile || ref.Offset%4096 != 0 || tp.RawData != nil || len(tp.FloatData) != 0 {
				t.Errorf("%s: tensor %s stored as %+v (raw %d bytes, %d floats)", test.name, tp.GetName(), ref, len(tp.RawData), len(tp.FloatData))
			}
			if err := CheckTensorSize(tp); err != nil {
				t.Errorf("%s: %s on disk: %v", test.name, tp.GetName(), err)
			}
			return true
		})
		if !reflect.DeepEqual(moved, test.wantMoved) {
			t.Errorf("%s: moved %q, want %q", test.name, moved, test.wantMoved)
		}
		_, statErr := os.Stat(filepath.Join(dir, dataFile))
		if len(test.wantMoved) > 0 && statErr != nil {
			t.Errorf("%s: no data file: %v", test.name, statErr)
		}

		back, err := Load(path)
		if err != nil {
			t.Fatalf("%s: Load: %v", test.name, err)
		}
		if len(test.wantMoved) > 0 && !reflect.DeepEqual(back.External, []string{dataFile}) {
			t.Errorf("%s: External = %q", test.name, back.External)
		}
		// Typed-field tensors come back in raw_data (external data is raw bytes): compare
		// their values, and the rest of the model exactly.
		want := proto.Clone(m.Proto).(*onnxpb.ModelProto)
		var wantTyped, gotTyped *onnxpb.TensorProto
		for _, tp := range want.Graph.Initializer {
			if tp.GetName() == "T_typed" {
				wantTyped = tp
			}
		}
		for _, tp := range back.Proto.Graph.Initializer {
			if tp.GetName() == "T_typed" {
				gotTyped = tp
			}
		}
		a, err1 := DecodeTensor(wantTyped)
		b, err2 := DecodeTensor(gotTyped)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s: T_typed after round trip: %v %v (%v, %v)", test.name, a, b, err1, err2)
		}
		if slices.Contains(test.wantMoved, "T_typed") {
			proto.Reset(wantTyped)
			proto.Merge(wantTyped, gotTyped)
		}
		// The explicit DEFAULT location cannot survive being moved out and back.
		for _, tp := range want.Graph.Initializer {
			if tp.GetName() == "T_explicit" && slices.Contains(test.wantMoved, "T_explicit") {
				tp.DataLocation = nil
			}
		}
		if !proto.Equal(back.Proto, want) {
			t.Errorf("%s: model differs after a round trip through external data", test.name)
		}
		checkOK(t, back, test.name)
	}
}

// TestSaveExternalRoundTripExact: a model whose tensors use raw_data (as EncodeTensor and
// every exporter write them) comes back identical.
func TestSaveExternalRoundTripExact(t *testing.T) {
	for _, m := range []*Model{mlpModel(t), ifModel(t)} {
		before := proto.Clone(m.Proto)
		path := filepath.Join(t.TempDir(), "m.onnx")
		if err := m.Save(path, SaveOptions{External: ExternalAlways, Threshold: 8}); err != nil {
			t.Fatal(err)
		}
		back, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(back.External) != 1 {
			t.Errorf("%s: External = %q, want one file", m.Graph().GetName(), back.External)
		}
		if !proto.Equal(back.Proto, before) || !proto.Equal(m.Proto, before) {
			t.Errorf("%s: round trip through external data changed the model", m.Graph().GetName())
		}
		// Saving the loaded model again, next to the first, gives the same bytes.
		again := filepath.Join(filepath.Dir(path), "again.onnx")
		if err := back.Save(again, SaveOptions{External: ExternalAlways, Threshold: 8, Location: "m.onnx.data2"}); err != nil {
			t.Fatal(err)
		}
		d1, _ := os.ReadFile(filepath.Join(filepath.Dir(path), back.External[0]))
		d2, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "m.onnx.data2"))
		if !bytes.Equal(d1, d2) {
			t.Errorf("%s: second save wrote different external data", m.Graph().GetName())
		}
	}
}

// TestSaveUnknownFields: fields this schema does not know survive Load and Save, inline
// and through external data.
func TestSaveUnknownFields(t *testing.T) {
	m := mlpModel(t)
	var modelField, nodeField, tensorField []byte
	modelField = protowire.AppendTag(modelField, 999, protowire.VarintType)
	modelField = protowire.AppendVarint(modelField, 12345)
	nodeField = protowire.AppendTag(nodeField, 777, protowire.BytesType)
	nodeField = protowire.AppendString(nodeField, "future attribute")
	tensorField = protowire.AppendTag(tensorField, 555, protowire.Fixed32Type)
	tensorField = protowire.AppendFixed32(tensorField, 0xdeadbeef)

	// Append the model's field to the serialized bytes, as a newer writer would.
	data := append(marshal(t, m), modelField...)
	loaded, err := LoadBytes(data, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := loaded.Proto.ProtoReflect().GetUnknown(); !bytes.Equal(got, modelField) {
		t.Fatalf("unknown model field after LoadBytes: % x", got)
	}
	n := loaded.Proto.Graph.Node[0]
	n.ProtoReflect().SetUnknown(append(n.ProtoReflect().GetUnknown(), nodeField...))
	w := loaded.Proto.Graph.Initializer[0]
	w.ProtoReflect().SetUnknown(append(w.ProtoReflect().GetUnknown(), tensorField...))

	for _, opts := range []SaveOptions{{}, {External: ExternalAlways, Threshold: 16}} {
		path := filepath.Join(t.TempDir(), "u.onnx")
		if err := loaded.Save(path, opts); err != nil {
			t.Fatal(err)
		}
		back, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		what := "external=" + strconv.Itoa(int(opts.External))
		if got := back.Proto.ProtoReflect().GetUnknown(); !bytes.Equal(got, modelField) {
			t.Errorf("%s: model's unknown field: % x", what, got)
		}
		if got := back.Proto.Graph.Node[0].ProtoReflect().GetUnknown(); !bytes.Equal(got, nodeField) {
			t.Errorf("%s: node's unknown field: % x", what, got)
		}
		if got := back.Proto.Graph.Initializer[0].ProtoReflect().GetUnknown(); !bytes.Equal(got, tensorField) {
			t.Errorf("%s: tensor's unknown field: % x", what, got)
		}
		if !proto.Equal(back.Proto, loaded.Proto) {
			t.Errorf("%s: model differs after the round trip", what)
		}
	}
}

// TestSaveFailures: a Save that fails leaves no temporary file, no data file, and the
// previous model (if any) in place.
func TestSaveFailures(t *testing.T) {
	badTyped := func(t testing.TB) *Model {
		m := mlpModel(t)
		// Its typed data does not match its shape: it cannot be moved to raw bytes.
		m.Graph().Initializer = append(m.Graph().Initializer, &onnxpb.TensorProto{
			Name: proto.String("bad"), DataType: proto.Int32(int32(TypeFloat)), Dims: []int64{1000}, FloatData: []float32{1},
		})
		return m
	}
	for _, test := range []struct {
		name  string
		model func(testing.TB) *Model
		setup func(dir string) string // returns the path to save to
		opts  SaveOptions
		want  string
	}{
		{
			name:  "path is a folder",
			model: mlpModel,
			setup: func(dir string) string { p := filepath.Join(dir, "m.onnx"); os.Mkdir(p, 0o755); return p },
			want:  "m.onnx",
		},
		{
			name:  "path is a folder, external",
			model: mlpModel,
			setup: func(dir string) string { p := filepath.Join(dir, "m.onnx"); os.Mkdir(p, 0o755); return p },
			opts:  SaveOptions{External: ExternalAlways, Threshold: 1},
			want:  "m.onnx",
		},
		{
			name:  "data file is a folder",
			model: mlpModel,
			setup: func(dir string) string {
				os.Mkdir(filepath.Join(dir, "m.onnx.data"), 0o755)
				return filepath.Join(dir, "m.onnx")
			},
			opts: SaveOptions{External: ExternalAlways, Threshold: 1, Location: "m.onnx.data"},
			want: "m.onnx.data",
		},
		{
			name:  "location outside",
			model: mlpModel,
			setup: func(dir string) string { return filepath.Join(dir, "m.onnx") },
			opts:  SaveOptions{External: ExternalAlways, Location: "../x.data"},
			want:  "must be a path inside the model's folder",
		},
		{
			name:  "absolute location",
			model: mlpModel,
			setup: func(dir string) string { return filepath.Join(dir, "m.onnx") },
			opts:  SaveOptions{External: ExternalAlways, Location: "/tmp/x.data"},
			want:  "must be a path inside the model's folder",
		},
		{
			name:  "location is the model file",
			model: mlpModel,
			setup: func(dir string) string { return filepath.Join(dir, "m.onnx") },
			opts:  SaveOptions{External: ExternalAlways, Location: "./m.onnx"},
			want:  "is the model file itself",
		},
		{
			name:  "tensor that does not match its shape",
			model: badTyped,
			setup: func(dir string) string { return filepath.Join(dir, "m.onnx") },
			opts:  SaveOptions{External: ExternalAlways, Threshold: 16},
			want:  `"bad"`,
		},
	} {
		dir := t.TempDir()
		path := test.setup(dir)
		m := test.model(t)
		before := proto.Clone(m.Proto)
		err := m.Save(path, test.opts)
		wantErr(t, test.name, err, test.want)
		noTempFiles(t, dir, test.name)
		if !proto.Equal(m.Proto, before) {
			t.Errorf("%s: failed Save changed the model in memory", test.name)
		}
		if test.name == "tensor that does not match its shape" {
			if got := listDir(t, dir); len(got) != 0 {
				t.Errorf("%s: files left behind: %q", test.name, got)
			}
		}
	}

	// A failed Save keeps the previous model and data files as they were.
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	good := mlpModel(t)
	if err := good.Save(path, SaveOptions{External: ExternalAlways, Threshold: 16}); err != nil {
		t.Fatal(err)
	}
	modelBefore, _ := os.ReadFile(path)
	dataBefore, _ := os.ReadFile(path + ".data")
	if err := badTyped(t).Save(path, SaveOptions{External: ExternalAlways, Threshold: 16}); err == nil {
		t.Fatalf("saving a bad model over a good one: no error")
	}
	modelAfter, _ := os.ReadFile(path)
	dataAfter, _ := os.ReadFile(path + ".data")
	if !bytes.Equal(modelBefore, modelAfter) || !bytes.Equal(dataBefore, dataAfter) {
		t.Errorf("failed Save changed the files of the previous model")
	}
	if _, err := Load(path); err != nil {
		t.Errorf("previous model no longer loads: %v", err)
	}
	noTempFiles(t, dir, "failed save over a good model")
}

func TestTempFile(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "f.bin")
	f, err := CreateTemp(final)
	if err != nil {
		t.Fatal(err)
	}
	if !IsTempName(filepath.Base(f.Name())) || filepath.Dir(f.Name()) != dir {
		t.Errorf("temporary file %s is not a recognisable temp file in %s", f.Name(), dir)
	}
	f.Write([]byte("abc"))
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // after Commit: does nothing
	if got, _ := os.ReadFile(final); string(got) != "abc" {
		t.Errorf("committed file holds %q", got)
	}
	if err := f.Commit(); err == nil {
		t.Errorf("second Commit: no error")
	}
	g, err := CreateTemp(final)
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("xyz"))
	g.Abort()
	if got, _ := os.ReadFile(final); string(got) != "abc" {
		t.Errorf("aborted temp file replaced the final file: %q", got)
	}
	if got := listDir(t, dir); !reflect.DeepEqual(got, []string{"f.bin"}) {
		t.Errorf("folder holds %q", got)
	}

	// CreateTemp creates a missing folder; an aborted file leaves nothing in it.
	h, err := CreateTemp(filepath.Join(dir, "new", "sub", "f"))
	if err != nil {
		t.Fatalf("CreateTemp in a missing folder: %v", err)
	}
	h.Abort()
	if got := listDir(t, filepath.Join(dir, "new", "sub")); len(got) != 0 {
		t.Errorf("aborted temp file left %q", got)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "w.txt"), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "w.txt")); string(got) != "hello" {
		t.Errorf("WriteFileAtomic wrote %q", got)
	}
	for _, test := range []struct {
		name string
		want bool
	}{{".m.onnx.123.tmp", true}, {"m.onnx", false}, {".hidden", false}, {"x.tmp", false}} {
		if got := IsTempName(test.name); got != test.want {
			t.Errorf("IsTempName(%q) = %v", test.name, got)
		}
	}
}

// freshData marks a test's expectation of Save's default data-file name.
const freshData = "<model>.<sha256[:8]>.data"

// freshDataName checks that loc is Save's fresh data name for model in dir: the model's
// name, the first 8 hex digits of the data file's sha256, ".data".
func freshDataName(t *testing.T, dir, model, loc string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, loc))
	if err != nil {
		t.Fatalf("data file %s: %v", loc, err)
	}
	want := fmt.Sprintf("%s.%x.data", model, sha256.Sum256(data))[:len(model)+9] + ".data"
	if loc != want {
		t.Errorf("data file %q, want %q", loc, want)
	}
	return loc
}

// Each save of a model with external data writes a new data file and removes those of
// earlier saves once the new model is in place; a save with the data inline removes them
// too. Files of other models and other names stay.
func TestSaveReplacesOldDataFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	keep := []string{"m.onnx.notes.data", "other.onnx.data", "m.onnx.1234567.data"}
	for _, k := range keep {
		os.WriteFile(filepath.Join(dir, k), []byte("x"), 0o644)
	}
	m := mlpModel(t)
	var names []string
	for i := range 3 {
		w := m.Graph().Initializer[0]
		w.RawData[0] = byte(i) // a different model each time
		if err := m.Save(path, SaveOptions{External: ExternalAlways, Threshold: 1}); err != nil {
			t.Fatal(err)
		}
		back, err := Load(path)
		if err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
		names = append(names, back.External...)
		datas, _ := filepath.Glob(filepath.Join(dir, "m.onnx.*.data"))
		if want := len(keep) - 1 + 1; len(datas) != want { // m.onnx.notes.data, m.onnx.1234567.data, the current one
			t.Errorf("save %d: data files %q", i, datas)
		}
	}
	if names[0] == names[1] || names[1] == names[2] {
		t.Errorf("saves of different data reused a data file name: %q", names)
	}
	if err := m.Save(path, SaveOptions{External: ExternalNever}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, names[2])); !os.IsNotExist(err) {
		t.Errorf("an inline save left the old data file %s (%v)", names[2], err)
	}
	for _, k := range keep {
		if _, err := os.Stat(filepath.Join(dir, k)); err != nil {
			t.Errorf("%s, not a data file of this model's saves, was removed", k)
		}
	}
}

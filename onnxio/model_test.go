package onnxio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"syscall"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/onnxpipe/onnxpipe/onnxio/onnxpb"
)

func TestLoadAndLoadBytes(t *testing.T) {
	m := mlpModel(t)
	data := marshal(t, m)
	dir := t.TempDir()
	path := filepath.Join(dir, "mlp.onnx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.Path != path || got.Dir != dir || len(got.External) != 0 {
		t.Errorf("Load: Path=%q Dir=%q External=%v", got.Path, got.Dir, got.External)
	}
	if !proto.Equal(got.Proto, m.Proto) {
		t.Errorf("Load: model differs from the one written")
	}
	checkOK(t, got, "loaded mlp")

	fromBytes, err := LoadBytes(data, "")
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	if fromBytes.Path != "" || fromBytes.Dir != "" || !proto.Equal(fromBytes.Proto, m.Proto) {
		t.Errorf("LoadBytes: Path=%q Dir=%q equal=%v", fromBytes.Path, fromBytes.Dir, proto.Equal(fromBytes.Proto, m.Proto))
	}
	c := got.Clone()
	c.Proto.Graph.Node[0].OpType = proto.String("Changed")
	c.External = append(c.External, "x")
	if got.Proto.Graph.Node[0].GetOpType() != "MatMul" || len(got.External) != 0 {
		t.Errorf("Clone shares state with the original")
	}
}

func TestOpset(t *testing.T) {
	m := mlpModel(t)
	for _, d := range []string{"", "ai.onnx"} {
		if v := m.Opset(d); v != 17 {
			t.Errorf("Opset(%q) = %d, want 17", d, v)
		}
	}
	if v := m.Opset("com.microsoft"); v != 0 {
		t.Errorf("Opset(com.microsoft) = %d, want 0", v)
	}
	m.SetOpset("ai.onnx", 19)
	m.SetOpset("com.microsoft", 1)
	if m.Opset("") != 19 || m.Opset("com.microsoft") != 1 || len(m.Proto.OpsetImport) != 2 {
		t.Errorf("after SetOpset: %v", m.Proto.OpsetImport)
	}
}

// lfsPointer is what a Git LFS checkout without `git lfs pull` leaves in place of a model.
const lfsPointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 831334\n"

// TestLoadBadInput feeds Load files that are not models: each must give one error
// naming the problem, and nothing may panic.
func TestLoadBadInput(t *testing.T) {
	tensorBytes, err := proto.Marshal(floatInit(t, "w", 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	unnamedTensor := floatInit(t, "", 2, 3)
	unnamedTensorBytes, _ := proto.Marshal(unnamedTensor)
	noGraph, _ := proto.Marshal(&onnxpb.ModelProto{IrVersion: proto.Int64(8)})
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, test := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty file", nil, "the file is empty"},
		{"git lfs pointer", []byte(lfsPointer), "Git LFS pointer"},
		{"random bytes", random, "not an ONNX model"},
		{"tensor bytes", tensorBytes, "not an ONNX model"},
		{"unnamed tensor bytes", unnamedTensorBytes, "not an ONNX model"},
		{"model without graph", noGraph, "it has no graph"},
		{"text", []byte("hello, world\n"), "not an ONNX model"},
		{"json", []byte(`{"ir_version": 8}`), "not an ONNX model"},
	} {
		path := filepath.Join(t.TempDir(), "bad.onnx")
		if err := os.WriteFile(path, test.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		wantErr(t, test.name, err, test.want, path)
		_, err = LoadBytes(test.data, "")
		wantErr(t, test.name+" (bytes)", err, test.want)
	}

	_, err = Load(filepath.Join(t.TempDir(), "missing.onnx"))
	wantErr(t, "missing file", err, "cannot read model", "missing.onnx", "no such file")
	dir := t.TempDir()
	_, err = Load(dir)
	wantErr(t, "folder", err, "not a regular file (a folder)")
}

// TestLoadTruncated cuts a valid model at every offset: each prefix must be refused by
// LoadBytes or by Check (a cut that falls between top-level fields may still parse) and
// none may panic.
func TestLoadTruncated(t *testing.T) {
	for _, m := range []*Model{mlpModel(t), ifModel(t)} {
		data := marshal(t, m)
		for cut := 0; cut < len(data); cut++ {
			got, err := LoadBytes(data[:cut], "")
			if err != nil {
				continue
			}
			if err := Check(got); err == nil {
				t.Errorf("model %s cut at %d of %d bytes: loads and checks clean", m.Proto.Graph.GetName(), cut, len(data))
			}
			// The rest of the API must cope with whatever parsed.
			Summarize(got)
			TopoSort(got.Graph())
		}
	}
}

// writeExternalModel writes a model with one 4x4 float initializer "W" whose data is
// in an external file, as described by entries; the data file (if dataFile != "") holds
// the 64 bytes of W at offset 4096. It returns the model's path and W's data.
func writeExternalModel(t *testing.T, dir, dataFile string, entries map[string]string) (string, []byte) {
	t.Helper()
	want := make([]byte, 64)
	for i := range 16 {
		binary.LittleEndian.PutUint32(want[4*i:], math.Float32bits(float32(i)+0.25))
	}
	if dataFile != "" {
		p := filepath.Join(dir, dataFile)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, append(make([]byte, 4096), want...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := &onnxpb.TensorProto{Name: proto.String("W"), DataType: proto.Int32(int32(TypeFloat)), Dims: []int64{4, 4},
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum()}
	for _, k := range []string{"location", "offset", "length"} {
		if v, ok := entries[k]; ok {
			w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(v)})
		}
	}
	g := &onnxpb.GraphProto{
		Name:        proto.String("ext"),
		Input:       []*onnxpb.ValueInfoProto{ValueInfo("x", TypeFloat, []int64{4, 4})},
		Initializer: []*onnxpb.TensorProto{w},
		Node:        []*onnxpb.NodeProto{node("mm", "MatMul", []string{"x", "W"}, []string{"y"})},
		Output:      []*onnxpb.ValueInfoProto{ValueInfo("y", TypeFloat, []int64{4, 4})},
	}
	m := wrapGraph(g)
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, marshal(t, m), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, want
}

func TestLoadExternalData(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.bin"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	loc := func(l string, kv ...string) map[string]string {
		m := map[string]string{"location": l, "offset": "4096", "length": "64"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "-" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	for _, test := range []struct {
		name     string
		dataFile string
		entries  map[string]string
		setup    func(dir string) // extra files or links
		wantErr  []string         // empty: loads, with W's data
	}{
		{name: "same folder", dataFile: "w.bin", entries: loc("w.bin")},
		{name: "sub folder", dataFile: "weights/w.bin", entries: loc("weights/w.bin")},
		{name: "dot slash", dataFile: "w.bin", entries: loc("./w.bin")},
		{name: "length to end of file", dataFile: "w.bin", entries: loc("w.bin", "length", "-")},
		{name: "symlink inside", dataFile: "w.bin", entries: loc("link.bin"), setup: func(dir string) {
			os.Symlink("w.bin", filepath.Join(dir, "link.bin"))
		}},
		{name: "missing data file", entries: loc("w.bin"), wantErr: []string{`"W"`, "cannot open its external data file", "w.bin"}},
		{name: "absolute path", entries: loc(filepath.Join(outside, "secret.bin")), wantErr: []string{`"W"`, "leaves the model's folder"}},
		{name: "dot-dot", entries: loc("../secret.bin"), wantErr: []string{`"W"`, "leaves the model's folder"}},
		{name: "dot-dot inside path", dataFile: "w.bin", entries: loc("sub/../../secret.bin"), wantErr: []string{"leaves the model's folder"}},
		{name: "symlink to a file outside", entries: loc("link.bin"), setup: func(dir string) {
			os.Symlink(filepath.Join(outside, "secret.bin"), filepath.Join(dir, "link.bin"))
		}, wantErr: []string{`"W"`, "resolves outside the model's folder"}},
		{name: "symlinked folder outside", entries: loc("sub/secret.bin"), setup: func(dir string) {
			os.Symlink(outside, filepath.Join(dir, "sub"))
		}, wantErr: []string{`"W"`, "resolves outside the model's folder"}},
		{name: "past the end", dataFile: "w.bin", entries: loc("w.bin", "length", "100"), wantErr: []string{`"W"`, "runs past the file's end"}},
		{name: "offset past the end", dataFile: "w.bin", entries: loc("w.bin", "offset", "9000", "length", "-"), wantErr: []string{`"W"`, "runs past the file's end"}},
		{name: "huge length", dataFile: "w.bin", entries: loc("w.bin", "offset", "10", "length", strconv.FormatInt(math.MaxInt64, 10)), wantErr: []string{`"W"`, "runs past the file's end"}},
		{name: "huge offset", dataFile: "w.bin", entries: loc("w.bin", "offset", strconv.FormatInt(math.MaxInt64, 10), "length", "64"), wantErr: []string{`"W"`, "runs past the file's end"}},
		{name: "offset not a number", dataFile: "w.bin", entries: loc("w.bin", "offset", "abc"), wantErr: []string{`"W"`, `offset="abc" is not a number`}},
		{name: "offset with junk", dataFile: "w.bin", entries: loc("w.bin", "offset", "4096abc"), wantErr: []string{`"W"`, "is not a number"}},
		{name: "offset in hex", dataFile: "w.bin", entries: loc("w.bin", "offset", "0x1000"), wantErr: []string{`"W"`, "is not a number"}},
		{name: "negative offset", dataFile: "w.bin", entries: loc("w.bin", "offset", "-5"), wantErr: []string{`"W"`, "negative external data offset"}},
		{name: "no location", dataFile: "w.bin", entries: loc("w.bin", "location", "-"), wantErr: []string{`"W"`, "without a location"}},
		{name: "two tensors on one range", dataFile: "w.bin", entries: loc("w.bin"), setup: func(dir string) {
			addSharedRangeTensors(t, filepath.Join(dir, "model.onnx"), 400)
		}, wantErr: []string{"w.bin", "ranges overlap"}},
		{name: "location is a FIFO", entries: loc("p.bin"), setup: func(dir string) {
			syscall.Mkfifo(filepath.Join(dir, "p.bin"), 0o644)
		}, wantErr: []string{`"W"`, "p.bin", "not a regular file (a named pipe)"}},
		{name: "location is a folder", entries: loc("d"), setup: func(dir string) {
			os.Mkdir(filepath.Join(dir, "d"), 0o755)
		}, wantErr: []string{`"W"`, "d"}},
	} {
		dir := t.TempDir()
		path, want := writeExternalModel(t, dir, test.dataFile, test.entries)
		if test.setup != nil {
			test.setup(dir)
		}
		m, err := Load(path)
		if len(test.wantErr) > 0 {
			wantErr(t, test.name, err, test.wantErr...)
			continue
		}
		if err != nil {
			t.Errorf("%s: Load: %v", test.name, err)
			continue
		}
		w := m.Proto.Graph.Initializer[0]
		if !bytes.Equal(w.RawData, want) || w.ExternalData != nil || w.DataLocation != nil {
			t.Errorf("%s: W after load: %d raw bytes, external_data=%v location=%v", test.name, len(w.RawData), w.ExternalData, w.DataLocation)
		}
		if !reflect.DeepEqual(m.External, []string{test.entries["location"]}) {
			t.Errorf("%s: External = %q", test.name, m.External)
		}
		checkOK(t, m, test.name)
	}

	// From bytes, there is no folder to read external data from.
	dir := t.TempDir()
	path, _ := writeExternalModel(t, dir, "w.bin", loc("w.bin"))
	data, _ := os.ReadFile(path)
	_, err := LoadBytes(data, "")
	wantErr(t, "LoadBytes without a folder", err, `"W"`, "without a folder")
	if m, err := LoadBytes(data, dir); err != nil || len(m.Proto.Graph.Initializer[0].RawData) != 64 {
		t.Errorf("LoadBytes with the folder: %v", err)
	}

	// A model in a folder reached through a symbolic link may use data in that folder.
	link := filepath.Join(t.TempDir(), "linked")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(link, "model.onnx")); err != nil {
		t.Errorf("model in a symlinked folder: %v", err)
	}

	// A declared length that does not match the shape loads, and Check names it.
	dir = t.TempDir()
	path, _ = writeExternalModel(t, dir, "w.bin", loc("w.bin", "length", "60"))
	m, err := Load(path)
	if err != nil {
		t.Fatalf("short external tensor: %v", err)
	}
	wantErr(t, "short external tensor", Check(m), `initializer "W"`, "raw_data has 60 bytes", "needs 64")
}

// A model path that is a FIFO is refused at once, not read when something writes to it.
func TestLoadFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.onnx")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	wantErr(t, "FIFO", err, "model.onnx", "not a regular file (a named pipe)")
}

func TestParseExternalRef(t *testing.T) {
	tp := func(kv ...string) *onnxpb.TensorProto {
		t := &onnxpb.TensorProto{Name: proto.String("T")}
		for i := 0; i < len(kv); i += 2 {
			t.ExternalData = append(t.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String(kv[i]), Value: proto.String(kv[i+1])})
		}
		return t
	}
	for _, test := range []struct {
		name    string
		tp      *onnxpb.TensorProto
		want    ExternalRef
		wantErr string
	}{
		{"all keys", tp("location", "a.bin", "offset", "4096", "length", "12", "checksum", "x"), ExternalRef{"a.bin", 4096, 12}, ""},
		{"location only", tp("location", "a.bin"), ExternalRef{"a.bin", 0, -1}, ""},
		{"spaces", tp("location", "a.bin", "offset", " 1"), ExternalRef{}, "is not a number"},
		{"empty offset", tp("location", "a.bin", "offset", ""), ExternalRef{}, "is not a number"},
		{"float length", tp("location", "a.bin", "length", "1.5"), ExternalRef{}, "is not a number"},
		{"overflow", tp("location", "a.bin", "length", "99999999999999999999"), ExternalRef{}, "is not a number"},
		{"length -1", tp("location", "a.bin", "length", "-1"), ExternalRef{"a.bin", 0, -1}, ""},
		{"length -2", tp("location", "a.bin", "length", "-2"), ExternalRef{}, "negative"},
		{"no location", tp("offset", "0"), ExternalRef{}, "without a location"},
	} {
		got, err := ParseExternalRef(test.tp)
		if test.wantErr != "" {
			wantErr(t, test.name, err, test.wantErr, `"T"`)
			continue
		}
		if err != nil || got != test.want {
			t.Errorf("%s: ParseExternalRef = %+v, %v, want %+v", test.name, got, err, test.want)
		}
	}
}

func TestWalkTensors(t *testing.T) {
	m := ifModel(t)
	m.Proto.Functions = []*onnxpb.FunctionProto{{Name: proto.String("f"), Node: []*onnxpb.NodeProto{
		node("fconst", "Constant", nil, []string{"fc"}, AttrTensor("value", floatInit(t, "fc", 1))),
	}}}
	m.Proto.TrainingInfo = []*onnxpb.TrainingInfoProto{{Initialization: &onnxpb.GraphProto{Initializer: []*onnxpb.TensorProto{floatInit(t, "ti", 1)}}}}
	m.Graph().SparseInitializer = []*onnxpb.SparseTensorProto{{Values: floatInit(t, "sv", 1), Indices: floatInit(t, "si", 1)}}
	var got []string
	WalkTensors(m.Proto, func(tp *onnxpb.TensorProto, where string) bool {
		got = append(got, tp.GetName()+" @ "+where)
		return true
	})
	want := []string{
		"w @ initializer",
		"sv @ sparse initializer",
		"si @ sparse initializer",
		`e_c @ attribute value of node "else_const" (Constant)`,
		`fc @ attribute value of node "fconst" (Constant)`,
		"ti @ initializer",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WalkTensors visited\n%q\nwant\n%q", got, want)
	}
	n := 0
	WalkTensors(m.Proto, func(*onnxpb.TensorProto, string) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("WalkTensors went on after fn returned false: %d calls", n)
	}
}

func TestNodeLabel(t *testing.T) {
	for _, test := range []struct {
		n    *onnxpb.NodeProto
		want string
	}{
		{node("conv1", "Conv", nil, []string{"y"}), `"conv1" (Conv)`},
		{node("", "Relu", nil, []string{"r"}), `Relu -> "r"`},
		{node("", "Print", nil, nil), "Print"},
	} {
		if got := NodeLabel(test.n); got != test.want {
			t.Errorf("NodeLabel = %s, want %s", got, test.want)
		}
	}
}

// TestBadModelFiles writes broken models to disk and opens them as `onnxpipe inspect`
// would (Load, then Check): each gives an error naming the problem.
func TestBadModelFiles(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "w.bin"), make([]byte, 8192), 0o644)
	extModel := func(loc string) func(t *testing.T) *Model {
		return func(t *testing.T) *Model {
			m := mlpModel(t)
			w := m.Graph().Initializer[0]
			w.RawData = nil
			w.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
			w.ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String(loc)}}
			return m
		}
	}
	for _, test := range []struct {
		name  string
		model func(t *testing.T) *Model
		want  []string
	}{
		{
			name: "cycle",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				g := m.Graph()
				g.Node[0].Input[0] = g.Node[2].Output[0] // MatMul reads Relu's output
				return m
			},
			want: []string{"graph has a cycle through nodes", `"MatMul" (MatMul)`, `"Relu" (Relu)`},
		},
		{
			name: "dangling input",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Node[1].Input[1] = "B_missing"
				return m
			},
			want: []string{`node "Add" (Add)`, `input "B_missing" is not defined`},
		},
		{
			name: "tensor shorter than its shape",
			model: func(t *testing.T) *Model {
				m := mlpModel(t)
				m.Graph().Initializer[2].RawData = m.Graph().Initializer[2].RawData[:10]
				return m
			},
			want: []string{`initializer "W2"`, "raw_data has 10 bytes, the shape [16 4] of float needs 256"},
		},
		{name: "missing external data file", model: extModel("gone.bin"), want: []string{`tensor "W1"`, "cannot open its external data file", "gone.bin"}},
		{name: "external data outside the folder", model: extModel("../" + filepath.Base(outside) + "/w.bin"), want: []string{`tensor "W1"`, "leaves the model's folder"}},
		{name: "external data at an absolute path", model: extModel(filepath.Join(outside, "w.bin")), want: []string{`tensor "W1"`, "leaves the model's folder"}},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "bad.onnx")
		if err := os.WriteFile(path, marshal(t, test.model(t)), 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Load(path)
		if err == nil {
			err = Check(m)
		}
		wantErr(t, test.name, err, test.want...)
	}
}

// addSharedRangeTensors adds n initializers to the model at path whose external data is
// the same range as W's: a few KB of model that would read W's bytes n times.
func addSharedRangeTensors(t *testing.T, path string, n int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		t.Fatal(err)
	}
	w := mp.Graph.Initializer[0]
	for i := range n {
		c := proto.Clone(w).(*onnxpb.TensorProto)
		c.Name = proto.String(fmt.Sprintf("W%d", i))
		mp.Graph.Initializer = append(mp.Graph.Initializer, c)
	}
	out, err := proto.Marshal(&mp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

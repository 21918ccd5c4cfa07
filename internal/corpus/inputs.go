package corpus

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/onnxpipe/onnxpipe/internal/testutil"
	"github.com/onnxpipe/onnxpipe/onnxio"
	"github.com/onnxpipe/onnxpipe/ort"
)

// Samples is how many samples each split (calibration and evaluation) has.
var Samples = 32

// Splits are the dataset splits written for each model: disjoint samples.
var Splits = []string{"calib", "eval"}

// kinds are the inputs a corpus model takes, and how they are made; "" means the model
// cannot be fed yet, and why.
var kinds = map[string]string{
	"text-page":         "",
	"text-line":         "",
	"text-line-rotated": "",
	"speech":            "",
	"speech-mel":        "",
	"speech-embedding":  "",
	"stateful":          "a streaming state fed back between chunks and a scalar sample rate: not supported by datasets yet",
}

// Kinds lists the input kinds of the list's last column.
func Kinds() []string {
	k := make([]string, 0, len(kinds))
	for n := range kinds {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// Unfed says why a model of this input kind is not run ("" when it is).
func Unfed(kind string) string { return kinds[kind] }

// Inputs writes each fed model's datasets into dir/data/<name>/<split>/<input>.npy (and
// labels.npy where the task has labels); models are read from dir/models.
func Inputs(dir string, list []Entry) error {
	w, err := words()
	if err != nil {
		return err
	}
	g := &generator{dir: dir, words: w}
	defer g.close()
	for _, e := range list {
		if Unfed(e.Inputs) != "" {
			continue
		}
		for si, split := range Splits {
			if err := g.write(e, split, uint64(si)); err != nil {
				return fmt.Errorf("%s %s: %w", e.Name, split, err)
			}
		}
	}
	return nil
}

type generator struct {
	dir   string
	words []string
	clips map[string][][]float32 // speech clips per split
	mel   map[string][]*onnxio.Tensor
	emb   map[string][][]float32 // per clip: its embeddings, 96 values each
	// sessions are the upstream models that derive inputs, by name (run)
	sessions map[string]*ort.Session
}

func (g *generator) write(e Entry, split string, seed uint64) error {
	out := filepath.Join(g.dir, "data", e.Name, split)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	model := filepath.Join(g.dir, "models", e.Name+".onnx")
	name, shape, err := firstInput(model)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	n := Samples
	var x *onnxio.Tensor
	var labels []int64
	switch e.Inputs {
	case "text-page":
		x = images(n, 320, 320, func(i int) []float32 {
			buf := make([]float32, 3*320*320)
			chw(buf, textPage(rng, g.words, 320, 320), [3]float32{0.485, 0.456, 0.406}, [3]float32{0.229, 0.224, 0.225})
			return buf
		})
	case "text-line":
		x = images(n, 48, 320, func(i int) []float32 {
			buf := make([]float32, 3*48*320)
			img, _ := textLine(rng, g.words, 320, 48)
			chw(buf, img, [3]float32{0.5, 0.5, 0.5}, [3]float32{0.5, 0.5, 0.5})
			return buf
		})
	case "text-line-rotated":
		x = images(n, 48, 192, func(i int) []float32 {
			buf := make([]float32, 3*48*192)
			img, _ := textLine(rng, g.words, 192, 48)
			if i%2 == 1 {
				img = rotate180(img)
			}
			labels = append(labels, int64(i%2)) // the classifier's classes: 0°, 180°
			chw(buf, img, [3]float32{0.5, 0.5, 0.5}, [3]float32{0.5, 0.5, 0.5})
			return buf
		})
	case "speech":
		clips, err := g.speech(split, seed)
		if err != nil {
			return err
		}
		x = onnxio.NewTensor([]int64{int64(len(clips)), int64(len(clips[0]))}, slices.Concat(clips...))
	case "speech-mel":
		if x, err = g.melWindows(split, seed); err != nil {
			return err
		}
	case "speech-embedding":
		if len(shape) != 3 || shape[1] <= 0 || shape[2] != 96 {
			return fmt.Errorf("input %s %v: want [1, frames, 96] embeddings", name, shape)
		}
		if x, err = g.embeddingWindows(split, seed, int(shape[1])); err != nil {
			return err
		}
	}
	if err := testutil.WriteNPY(filepath.Join(out, name+".npy"), x); err != nil {
		return err
	}
	if labels != nil {
		return testutil.WriteNPY(filepath.Join(out, "labels.npy"), onnxio.NewTensor([]int64{int64(len(labels))}, labels))
	}
	return nil
}

// images stacks n images of 3×h×w values made by one.
func images(n, h, w int, one func(i int) []float32) *onnxio.Tensor {
	data := make([]float32, 0, n*3*h*w)
	for i := range n {
		data = append(data, one(i)...)
	}
	return onnxio.NewTensor([]int64{int64(n), 3, int64(h), int64(w)}, data)
}

// firstInput returns the name and shape of the model's first input.
func firstInput(path string) (string, []int64, error) {
	m, err := onnxio.Load(path)
	if err != nil {
		return "", nil, err
	}
	in := m.Graph().GetInput()
	if len(in) == 0 {
		return "", nil, fmt.Errorf("%s has no inputs", path)
	}
	dims, _, _ := onnxio.ValueShape(in[0])
	return in[0].GetName(), dims, nil
}

// wakePhrases are what the wake-word models listen for, spoken in half of the clips.
var wakePhrases = []string{"hey jarvis", "alexa", "hey mycroft", "hey rhasspy", "what is the weather like today", "set a timer for ten minutes"}

// clipSamples is the length of a speech clip: 4 s, enough for the 34 embeddings the
// longest wake-word model reads.
const clipSamples = 4 * SampleRate

// speech returns the split's clips: wake phrases and sentences of the text, in several
// voices and speeds, placed in faint noise.
func (g *generator) speech(split string, seed uint64) ([][]float32, error) {
	if c := g.clips[split]; c != nil {
		return c, nil
	}
	tmp, err := os.MkdirTemp("", "onnxpipe-corpus-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	rng := rand.New(rand.NewPCG(seed, 0xa0d10))
	var clips [][]float32
	for i := range Samples {
		text := wakePhrases[rng.IntN(len(wakePhrases))]
		if i%2 == 1 {
			text = phrase(rng, g.words, func(s string) bool { return len(s) < 50 })
		}
		pcm, err := speak(tmp, text, rng.IntN(len(voices)), 130+rng.IntN(60))
		if err != nil {
			return nil, err
		}
		clips = append(clips, clip(rng, pcm, clipSamples))
	}
	if g.clips == nil {
		g.clips = map[string][][]float32{}
	}
	g.clips[split] = clips
	return clips, nil
}

// run runs a corpus model on one input; its session is opened once and kept for the
// generator's other calls.
func (g *generator) run(name string, in map[string]*onnxio.Tensor) (*onnxio.Tensor, error) {
	s := g.sessions[name]
	if s == nil {
		m, err := onnxio.Load(filepath.Join(g.dir, "models", name+".onnx"))
		if err != nil {
			return nil, err
		}
		data, err := m.Bytes()
		if err != nil {
			return nil, err
		}
		if s, err = ort.NewSession(data, ort.Options{}); err != nil {
			return nil, err
		}
		if g.sessions == nil {
			g.sessions = map[string]*ort.Session{}
		}
		g.sessions[name] = s
	}
	out, err := s.Run(in)
	if err != nil {
		return nil, err
	}
	return out[s.Outputs()[0].Name], nil
}

// close closes the sessions run opened.
func (g *generator) close() {
	for _, s := range g.sessions {
		s.Close()
	}
}

// spectrograms runs openWakeWord's melspectrogram model on each clip of the split and
// scales its output as openWakeWord does (x/10 + 2): [frames, 32] per clip.
func (g *generator) spectrograms(split string, seed uint64) ([]*onnxio.Tensor, error) {
	if m := g.mel[split]; m != nil {
		return m, nil
	}
	clips, err := g.speech(split, seed)
	if err != nil {
		return nil, err
	}
	var out []*onnxio.Tensor
	for _, c := range clips {
		t, err := g.run("oww_melspectrogram", map[string]*onnxio.Tensor{"input": onnxio.NewTensor([]int64{1, int64(len(c))}, c)})
		if err != nil {
			return nil, fmt.Errorf("oww_melspectrogram: %w", err)
		}
		v, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		for i := range v {
			v[i] = v[i]/10 + 2
		}
		frames := int64(len(v) / 32)
		out = append(out, onnxio.NewTensor([]int64{frames, 32}, v))
	}
	if g.mel == nil {
		g.mel = map[string][]*onnxio.Tensor{}
	}
	g.mel[split] = out
	return out, nil
}

// melWindows are the embedding model's inputs: 76 spectrogram frames, one window per
// clip at a random place, [N, 76, 32, 1].
func (g *generator) melWindows(split string, seed uint64) (*onnxio.Tensor, error) {
	mels, err := g.spectrograms(split, seed)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x3e1))
	var data []float32
	for _, m := range mels {
		v, _ := m.Float32s()
		start := rng.IntN(int(m.Shape[0])-76+1) * 32
		data = append(data, v[start:start+76*32]...)
	}
	return onnxio.NewTensor([]int64{int64(len(mels)), 76, 32, 1}, data), nil
}

// embeddingWindows are a wake-word model's inputs: the last frames embeddings of each
// clip, made as openWakeWord makes them (76-frame windows every 8 frames through the
// embedding model), [N, frames, 96].
func (g *generator) embeddingWindows(split string, seed uint64, frames int) (*onnxio.Tensor, error) {
	if g.emb == nil {
		g.emb = map[string][][]float32{}
	}
	if g.emb[split] == nil {
		mels, err := g.spectrograms(split, seed)
		if err != nil {
			return nil, err
		}
		for _, m := range mels {
			v, _ := m.Float32s()
			var windows []float32
			n := 0
			for start := 0; start+76 <= int(m.Shape[0]); start += 8 {
				windows = append(windows, v[start*32:(start+76)*32]...)
				n++
			}
			t, err := g.run("oww_embedding", map[string]*onnxio.Tensor{"input_1": onnxio.NewTensor([]int64{int64(n), 76, 32, 1}, windows)})
			if err != nil {
				return nil, fmt.Errorf("oww_embedding: %w", err)
			}
			e, err := t.Float32s()
			if err != nil {
				return nil, err
			}
			g.emb[split] = append(g.emb[split], e)
		}
	}
	var data []float32
	for _, e := range g.emb[split] {
		if len(e) < frames*96 {
			return nil, fmt.Errorf("a clip has %d embeddings, the model reads %d", len(e)/96, frames)
		}
		data = append(data, e[len(e)-frames*96:]...)
	}
	return onnxio.NewTensor([]int64{int64(len(g.emb[split])), int64(frames), 96}, data), nil
}

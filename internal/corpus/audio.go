package corpus

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
)

// SampleRate is the rate of the speech clips (what openWakeWord and Silero VAD take).
const SampleRate = 16000

// voices are espeak-ng voices and pitches the clips are spoken in.
var voices = []struct {
	voice string
	pitch int
}{{"en-us", 50}, {"en-gb", 40}, {"en-us+f3", 60}, {"en-sc", 45}, {"en-us+m3", 35}, {"en-gb-x-rp+f2", 70}}

// speak synthesizes text with espeak-ng and returns it at SampleRate as int16-range
// floats (what openWakeWord's melspectrogram model takes).
func speak(dir, text string, voice int, speed int) ([]float32, error) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		return nil, fmt.Errorf("the corpus's speech needs espeak-ng (apt-get install espeak-ng)")
	}
	v := voices[voice%len(voices)]
	wav := filepath.Join(dir, "speech.wav")
	cmd := exec.Command("espeak-ng", "-v", v.voice, "-p", fmt.Sprint(v.pitch), "-s", fmt.Sprint(speed), "-w", wav, text)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("espeak-ng: %v: %s", err, out)
	}
	data, err := os.ReadFile(wav)
	if err != nil {
		return nil, err
	}
	pcm, rate, err := readWAV(data)
	if err != nil {
		return nil, fmt.Errorf("espeak-ng's output: %w", err)
	}
	return resample(pcm, rate, SampleRate), nil
}

// readWAV reads a mono 16-bit PCM WAV file.
func readWAV(b []byte) ([]float32, int, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("not a RIFF/WAVE file")
	}
	var rate, channels, bits int
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:]))
		body := b[off+8 : min(len(b), off+8+size)]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, 0, fmt.Errorf("short fmt chunk")
			}
			channels = int(binary.LittleEndian.Uint16(body[2:]))
			rate = int(binary.LittleEndian.Uint32(body[4:]))
			bits = int(binary.LittleEndian.Uint16(body[14:]))
		case "data":
			if channels != 1 || bits != 16 {
				return nil, 0, fmt.Errorf("%d channels of %d bits: want mono 16-bit", channels, bits)
			}
			if size > len(body) || size == 0x7fffffff || size == -1 { // espeak-ng streaming size
				body = b[off+8:]
			}
			pcm := make([]float32, len(body)/2)
			for i := range pcm {
				pcm[i] = float32(int16(binary.LittleEndian.Uint16(body[2*i:])))
			}
			return pcm, rate, nil
		}
		off += 8 + size + size%2
	}
	return nil, 0, fmt.Errorf("no data chunk")
}

// resample converts x from rate from to rate to with a windowed-sinc low-pass filter.
func resample(x []float32, from, to int) []float32 {
	if from == to {
		return x
	}
	n := int(int64(len(x)) * int64(to) / int64(from))
	out := make([]float32, n)
	ratio := float64(from) / float64(to)
	cutoff := math.Min(1, 1/ratio) // of the input's Nyquist
	const half = 16
	for i := range out {
		center := float64(i) * ratio
		lo, hi := int(center)-half, int(center)+half
		var sum, wsum float64
		for j := max(lo, 0); j <= min(hi, len(x)-1); j++ {
			t := float64(j) - center
			w := 0.5 + 0.5*math.Cos(math.Pi*t/(half+1)) // Hann window
			s := cutoff
			if t != 0 {
				s = math.Sin(math.Pi*cutoff*t) / (math.Pi * t)
			}
			sum += float64(x[j]) * s * w
			wsum += s * w
		}
		if wsum != 0 {
			out[i] = float32(sum / wsum)
		}
	}
	return out
}

// clip places speech at a random offset in a clip of n samples with faint noise (a room),
// scaled to a random loudness.
func clip(rng *rand.Rand, speech []float32, n int) []float32 {
	out := make([]float32, n)
	gain := float32(0.4 + 0.8*rng.Float64())
	start := 0
	if len(speech) < n {
		start = rng.IntN(n - len(speech) + 1)
	}
	for i := range out {
		out[i] = float32(rng.NormFloat64() * 30)
		if j := i - start; j >= 0 && j < len(speech) {
			out[i] += gain * speech[j]
		}
		out[i] = max(-32768, min(32767, out[i]))
	}
	return out
}

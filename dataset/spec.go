// Package dataset describes and reads the data sets that calibration, verification and
// distillation feed to models: npy/npz arrays, ONNX TensorProto files, image folders,
// MNIST idx files and random data.
package dataset

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Formats lists the dataset formats a Spec may name.
var Formats = []string{"npy", "npz", "pb", "images", "idx", "random"}

// Spec is one entry of a config's `datasets:` mapping.
type Spec struct {
	// Format of the files: npy | npz | pb (ONNX TensorProto files) | images (a folder of
	// PNG/JPEG files) | idx (MNIST's idx files) | random (explicit only: ranges calibrated
	// on random data mean little).
	Format string `yaml:"format" json:"format"`
	// Inputs maps each model input name to its file or folder: npy, a .npy file whose
	// first axis is the samples; npz, file.npz (the array named after the input) or
	// file.npz:array; pb, a .pb TensorProto whose first axis is the samples, or a folder of
	// input_K.pb files or test_data_set_N folders (ONNX test data); images, a folder of
	// PNG/JPEG files (subfolders included); idx, the images file (plain or gzip).
	Inputs map[string]string `yaml:"inputs" json:"inputs"`
	// Labels is an optional file of integer class ids (one per sample): .npy,
	// file.npz[:array] (default array "labels"), .txt (one per line) or an idx labels file;
	// for format images, "folders" numbers each image's top-level subfolder (ImageNet
	// style, sorted). It enables the accuracy metrics and the hard-label loss of distill.
	Labels string `yaml:"labels,omitempty" json:"labels,omitempty"`
	// Limit is the most samples to use (0: all).
	Limit int `yaml:"limit,omitempty" json:"limit,omitempty"`
	// Skip leaves out the first samples of the order (after shuffling, before limit): two
	// specs with the same shuffle seed, one with limit N and one with skip N, are disjoint
	// splits of one file (training and validation, say).
	Skip int `yaml:"skip,omitempty" json:"skip,omitempty"`
	// Batch is the samples per inference run (default 16); a model whose batch axis is
	// fixed gets that many samples per run instead.
	Batch int `yaml:"batch,omitempty" json:"batch,omitempty"`
	// Shuffle is 0 for file order, else the seed of a shuffled order.
	Shuffle int64 `yaml:"shuffle,omitempty" json:"shuffle,omitempty"`
	// Image preprocessing, for format images.
	Image *ImageSpec `yaml:"image,omitempty" json:"image,omitempty"`
	// Samples is the number of samples to generate, for format random (default 16).
	Samples int `yaml:"samples,omitempty" json:"samples,omitempty"`
	// Seed of the random generator, for format random: float inputs get standard normal
	// values, integer inputs uniform values in [0, 10).
	Seed int64 `yaml:"seed,omitempty" json:"seed,omitempty"`
}

// ImageSpec is the preprocessing of the images format.
type ImageSpec struct {
	// Size is the [height, width] the model takes; images are center-cropped to it.
	Size []int `yaml:"size" json:"size"`
	// Resize scales the shorter side to this many pixels before the crop (0: no resize);
	// an image smaller than size is scaled up to cover it.
	Resize int `yaml:"resize,omitempty" json:"resize,omitempty"`
	// Mean is subtracted from each channel after scaling: (x/scale - mean) / std.
	Mean []float64 `yaml:"mean,omitempty" json:"mean,omitempty"`
	// Std divides each channel after the mean is subtracted.
	Std []float64 `yaml:"std,omitempty" json:"std,omitempty"`
	// Layout is NCHW (default) or NHWC.
	Layout string `yaml:"layout,omitempty" json:"layout,omitempty"`
	// Channels is RGB (default), BGR or GRAY.
	Channels string `yaml:"channels,omitempty" json:"channels,omitempty"`
	// Scale divides pixel values first (default 255).
	Scale float64 `yaml:"scale,omitempty" json:"scale,omitempty"`
}

// MaxRandomSamples is the most samples a random dataset may generate.
const MaxRandomSamples = 1 << 24

// Validate checks a spec without reading any file.
func (s *Spec) Validate() error {
	if s.Format == "" {
		return fmt.Errorf("format is missing; one of %s", strings.Join(Formats, ", "))
	}
	if !slices.Contains(Formats, s.Format) {
		return fmt.Errorf("unknown format %q; one of %s", s.Format, strings.Join(Formats, ", "))
	}
	if s.Format != "random" && len(s.Inputs) == 0 {
		return fmt.Errorf("inputs is missing: map each model input name to its %s file", s.Format)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Inputs)) {
		if s.Inputs[name] == "" && s.Format != "random" {
			return fmt.Errorf("inputs: input %q has an empty path: give its %s file", name, s.Format)
		}
	}
	for _, v := range []struct {
		key string
		n   int
	}{{"limit", s.Limit}, {"skip", s.Skip}, {"batch", s.Batch}, {"samples", s.Samples}} {
		if v.n < 0 {
			return fmt.Errorf("%s %d: cannot be negative", v.key, v.n)
		}
	}
	if s.Samples > MaxRandomSamples {
		// The sample order is a slice of that many ints: a typo here would exhaust memory.
		return fmt.Errorf("samples %d: a random dataset holds at most %d", s.Samples, MaxRandomSamples)
	}
	if s.Format == "images" {
		if s.Image == nil || len(s.Image.Size) != 2 {
			return fmt.Errorf("format images needs image.size: [height, width]")
		}
		if l := s.Image.Layout; l != "" && l != "NCHW" && l != "NHWC" {
			return fmt.Errorf("image.layout %q: NCHW or NHWC", l)
		}
		if c := s.Image.Channels; c != "" && c != "RGB" && c != "BGR" && c != "GRAY" {
			return fmt.Errorf("image.channels %q: RGB, BGR or GRAY", c)
		}
	} else if s.Image != nil {
		return fmt.Errorf("image applies to format images only")
	}
	return nil
}

// ResolvePaths rewrites every file path the spec names (inputs and labels) with resolve,
// which makes relative paths absolute against the config's folder.
func (s *Spec) ResolvePaths(resolve func(string) string) {
	for k, v := range s.Inputs {
		s.Inputs[k] = resolve(v)
	}
	if s.Labels != "" && s.Labels != LabelsFromFolders {
		s.Labels = resolve(s.Labels)
	}
}

// LabelsFromFolders is the labels value that takes each image's label from its class
// subfolder (format images), not from a file.
const LabelsFromFolders = "folders"

package dataset

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/onnxpipe/onnxpipe/internal/regular"

	"github.com/onnxpipe/onnxpipe/onnxio"
)

// readLabels reads a labels file, whatever the dataset's format:
//
//   - "file.npz" or "file.npz:array" (default array "labels"): an npz member;
//   - a .txt file: one integer per line (blank lines skipped);
//   - an idx file (plain or gzip, told by its content): MNIST's idx1-ubyte labels;
//   - else a .npy file.
//
// Arrays must hold integers (any width, signed or not) of shape [samples] or
// [samples, 1].
func (d *Dataset) readLabels(p string) ([]int64, error) {
	var a *array
	var err error
	switch {
	case isNPZ(p):
		file, name := splitNPZ(p, "labels")
		var z *npzArchive
		if z, err = d.openNPZArchive(file); err == nil {
			a, err = d.npzArray(z, name)
		}
	case strings.HasSuffix(strings.ToLower(p), ".txt"):
		return readTextLabels(p)
	default:
		var head []byte
		head, err = readHead(p, 6)
		if err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		if bytes.HasPrefix(head, []byte("\x93NUMPY")) {
			a, err = d.openNPY(p)
		} else if len(head) >= 2 && (head[0] == 0x1f && head[1] == 0x8b || head[0] == 0 && head[1] == 0) {
			a, err = d.openIdxFile(p)
		} else {
			return nil, fmt.Errorf("labels: %s is neither .npy, .npz, idx nor .txt; give integer class ids in one of those", p)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	if len(a.shape) > 2 || len(a.shape) == 2 && a.shape[1] != 1 {
		return nil, fmt.Errorf("labels: %s has shape %v; give one class id per sample, shape [samples] or [samples, 1]", a.what, a.shape)
	}
	switch a.dt {
	case onnxio.TypeInt8, onnxio.TypeUint8, onnxio.TypeInt16, onnxio.TypeUint16, onnxio.TypeInt32, onnxio.TypeUint32, onnxio.TypeInt64, onnxio.TypeUint64:
	default:
		return nil, fmt.Errorf("labels: %s holds %s; give integer class ids (numpy: a.astype(np.int64))", a.what, a.dt)
	}
	rows := make([]int, a.rows())
	for i := range rows {
		rows[i] = i
	}
	raw, err := a.readRows(rows)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	return toInt64(decodeRaw(a.dt, a.big, raw))
}

// toInt64 widens a slice of integers.
func toInt64(data any) ([]int64, error) {
	switch s := data.(type) {
	case []int8:
		return widen(s), nil
	case []uint8:
		return widen(s), nil
	case []int16:
		return widen(s), nil
	case []uint16:
		return widen(s), nil
	case []int32:
		return widen(s), nil
	case []uint32:
		return widen(s), nil
	case []uint64:
		return widen(s), nil
	case []int64:
		return s, nil
	}
	return nil, fmt.Errorf("labels: %T is not integers", data)
}

func widen[T int8 | uint8 | int16 | uint16 | int32 | uint32 | uint64](s []T) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

func readHead(p string, n int) ([]byte, error) {
	f, err := regular.Open(p)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %v", p, errText(err))
	}
	defer f.Close()
	b := make([]byte, n)
	m, _ := f.Read(b)
	return b[:m], nil
}

func readTextLabels(p string) ([]int64, error) {
	f, err := regular.Open(p)
	if err != nil {
		return nil, fmt.Errorf("labels: cannot open %s: %v", p, errText(err))
	}
	defer f.Close()
	var out []int64
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("labels: %s line %d: %q is not an integer class id; write one per line", p, line, s)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("labels: %s: %v", p, err)
	}
	if out == nil {
		out = []int64{}
	}
	return out, nil
}

// Package suggest finds the name a user most likely meant, for "did you mean" hints.
package suggest

import "unicode"

// Closest returns the candidate that name was most likely meant to be, or ""
// when none is close enough. Comparison ignores case, '_' and '-'
// ("perChannel" and "per-channel" suggest "per_channel"). A candidate is close
// when its Damerau-Levenshtein (optimal string alignment) distance to name is
// at most 2 (at most 1 for names of up to 4 letters, and always less than
// the name's length), or when the two share a common prefix of at least
// 4 letters that covers at least half of the shorter one ("calib" suggests
// "calibration"). The smallest distance wins, then the longest common prefix,
// then the earliest candidate. A candidate equal to name is never suggested.
//
// Before any of that, a name that is a candidate but for case ("INT8") or in
// onnxruntime's spelling of a quantized type, a Q before the type ("QInt8",
// "QUInt8"), suggests that candidate; the distances of such a name are those of
// the type without its Q.
func Closest(name string, candidates []string) string {
	n := normalizeName(name)
	if len(n) == 0 {
		return ""
	}
	ort := onnxruntimeType(n)
	for _, alias := range [][]rune{n, ort} {
		for _, c := range candidates {
			if c != name && alias != nil && string(normalizeName(c)) == string(alias) {
				return c
			}
		}
	}
	if ort != nil { // QInt4 among int8, uint8: measure int4
		n = ort
	}
	maxDist := 2
	if len(n) <= 4 {
		maxDist = 1
	}
	if maxDist >= len(n) {
		maxDist = len(n) - 1
	}
	const prefixScore = 3 // ranks below any accepted edit distance
	best, bestScore, bestPrefix := "", -1, -1
	for _, c := range candidates {
		if c == name {
			continue
		}
		cn := normalizeName(c)
		if len(cn) == 0 {
			continue
		}
		prefix := commonPrefix(n, cn)
		score := -1
		if d := osaDistance(n, cn, maxDist); d <= maxDist {
			score = d
		} else if short := min(len(n), len(cn)); prefix >= 4 && 2*prefix >= short {
			score = prefixScore
		}
		if score < 0 {
			continue
		}
		if bestScore < 0 || score < bestScore || (score == bestScore && prefix > bestPrefix) {
			best, bestScore, bestPrefix = c, score, prefix
		}
	}
	return best
}

// onnxruntimeType is n without the q of onnxruntime's QuantType names (qint8 -> int8,
// quint8 -> uint8, qint4, quint16, ...), or nil when n is not one.
func onnxruntimeType(n []rune) []rune {
	rest := string(n)
	if len(rest) < 2 || rest[0] != 'q' {
		return nil
	}
	rest = rest[1:]
	for _, p := range []string{"int", "uint", "float"} {
		if len(rest) > len(p) && rest[:len(p)] == p {
			return []rune(rest)
		}
	}
	return nil
}

// normalizeName lower-cases s and drops '_', '-' and spaces.
func normalizeName(s string) []rune {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '_' || r == '-' || r == ' ' {
			continue
		}
		out = append(out, unicode.ToLower(r))
	}
	return out
}

func commonPrefix(a, b []rune) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// osaDistance is the optimal string alignment distance (Levenshtein plus
// transposition of adjacent letters). It returns limit+1 as soon as the
// distance is known to exceed limit.
func osaDistance(a, b []rune, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

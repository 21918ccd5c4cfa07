package corpus

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"unicode"
)

// TextSource is the English text the rendered images and the synthesized speech say:
// the GNU GPL 3 as Debian's base-files package ships it (on every Debian system).
var TextSource = "/usr/share/common-licenses/GPL-3"

// words reads TextSource as words of letters, digits and punctuation.
func words() ([]string, error) {
	data, err := os.ReadFile(TextSource)
	if err != nil {
		return nil, fmt.Errorf("the corpus's text: %w (it comes with Debian's base-files package; set corpus.TextSource to another English text)", err)
	}
	w := strings.FieldsFunc(string(data), func(r rune) bool { return unicode.IsSpace(r) || r > unicode.MaxASCII })
	if len(w) < 100 {
		return nil, fmt.Errorf("the corpus's text %s has %d words: too few", TextSource, len(w))
	}
	return w, nil
}

// phrase returns consecutive words from a random place, as many as fit in fit.
func phrase(rng *rand.Rand, w []string, fit func(string) bool) string {
	start := rng.IntN(len(w) - 50)
	s := w[start]
	for i := start + 1; i < len(w); i++ {
		next := s + " " + w[i]
		if !fit(next) {
			break
		}
		s = next
	}
	return s
}

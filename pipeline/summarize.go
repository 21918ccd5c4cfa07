package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// shardSummary matches the summary file of a shard.
var shardSummary = regexp.MustCompile(`^summary\.shard-[0-9]+-of-[0-9]+\.json$`)

// SummaryFiles returns the summaries in dir, in name order: summary.json (a whole run's,
// or an earlier merge's) and each shard's summary.shard-i-of-n.json.
func SummaryFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if name := e.Name(); e.Type().IsRegular() && (name == SummaryName || shardSummary.MatchString(name)) {
			out = append(out, filepath.Join(dir, name))
		}
	}
	return out, nil
}

// ReadSummary reads a summary file (summary.json or a shard's).
func ReadSummary(path string) (*Summary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: not a summary: %w", path, err)
	}
	if s.SchemaVersion != SummarySchemaVersion {
		return nil, fmt.Errorf("%s: summary schema_version %d, this onnxpipe reads %d", path, s.SchemaVersion, SummarySchemaVersion)
	}
	return &s, nil
}

// MergeSummaries merges summaries (of shards, of reruns, of earlier merges) into one, with
// a row per job: a job is its config and model. When several summaries have a job, the
// newest result wins: the latest `finished` (a row without one counts as its summary's
// `created`), then the later summary, then the later in the list. names, parallel to
// sums, go into the result's `merged`. Rows are sorted by model path.
func MergeSummaries(sums []*Summary, names []string) *Summary {
	type pick struct {
		row     SummaryRow
		created time.Time
	}
	when := func(p pick) time.Time {
		if p.row.Finished.IsZero() {
			return p.created
		}
		return p.row.Finished
	}
	best := map[string]pick{}
	configs := map[string]bool{}
	var newest *Summary
	for _, s := range sums {
		if newest == nil || !s.Created.Before(newest.Created) {
			newest = s
		}
		for _, r := range s.Jobs {
			if r.Config == "" {
				r.Config = s.Config
			}
			configs[filepath.Clean(r.Config)] = true
			key := filepath.Clean(r.Config) + "\x00" + filepath.Clean(r.Model)
			p := pick{r, s.Created}
			if old, ok := best[key]; ok {
				a, b := when(p), when(old)
				if a.Before(b) || (a.Equal(b) && p.created.Before(old.created)) {
					continue
				}
			}
			best[key] = p
		}
	}
	out := &Summary{SchemaVersion: SummarySchemaVersion, Created: time.Now().UTC().Truncate(time.Second), Merged: names}
	if newest != nil {
		out.Tool = newest.Tool
	}
	all := slices.Sorted(func(yield func(string) bool) {
		for c := range configs {
			if !yield(c) {
				return
			}
		}
	})
	out.Config = strings.Join(all, ", ")
	for _, p := range best {
		if len(all) == 1 {
			p.row.Config = "" // the summary's config
		}
		out.Jobs = append(out.Jobs, p.row)
	}
	sort.Slice(out.Jobs, func(i, k int) bool {
		a, b := out.Jobs[i], out.Jobs[k]
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return a.Config < b.Config
	})
	out.count()
	return out
}

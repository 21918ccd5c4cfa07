package yamlx

import (
	"testing"
)

func TestDiagnosticString(t *testing.T) {
	tests := []struct {
		d    Diagnostic
		want string
	}{
		{Diagnostic{File: "p.yaml", Line: 3, Col: 5, Msg: "bad"}, "p.yaml:3:5: bad"},
		{Diagnostic{File: "p.yaml", Line: 3, Msg: "bad"}, "p.yaml:3: bad"},
		{Diagnostic{File: "p.yaml", Msg: "bad"}, "p.yaml: bad"},
		{Diagnostic{Line: 3, Col: 5, Msg: "bad"}, "3:5: bad"},
		{Diagnostic{Msg: "bad"}, "bad"},
		{Diagnostic{File: "p.yaml", Col: 5, Msg: "bad"}, "p.yaml: bad"}, // a column without a line means nothing
		{Diagnostic{File: "p.yaml", Line: 1, Col: 1, Msg: "odd", Warning: true}, "p.yaml:1:1: warning: odd"},
		{Diagnostic{File: "p.yaml", Line: 1, Col: 1, Path: "a.b", Msg: "bad"}, "p.yaml:1:1: bad"},
	}
	for _, tc := range tests {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.d, got, tc.want)
		}
		if got := tc.d.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestDiagnostics(t *testing.T) {
	ds := Diagnostics{
		{Line: 9, Col: 1, Msg: "c"},
		{File: "b.yaml", Line: 1, Col: 1, Msg: "e"},
		{Line: 2, Col: 7, Msg: "b2"},
		{Line: 2, Col: 3, Msg: "a"},
		{Line: 2, Col: 7, Msg: "b1"},
		{Msg: "no position", Warning: true},
	}
	ds.Sort()
	want := "no position\n2:3: a\n2:7: b2\n2:7: b1\n9:1: c\nb.yaml:1:1: e"
	if got := ds.Error(); got != "warning: "+want {
		t.Errorf("sorted:\n%s\nwant:\n%s", got, "warning: "+want)
	}
	if !ds.HasErrors() {
		t.Error("HasErrors() = false")
	}
	if (Diagnostics{{Msg: "w", Warning: true}}).HasErrors() {
		t.Error("HasErrors() = true for warnings only")
	}
	if err := (Diagnostics{}).Err(); err != nil {
		t.Errorf("empty Err() = %v", err)
	}
	if err := Diagnostics(nil).Err(); err != nil {
		t.Errorf("nil Err() = %v", err)
	}
	if err := ds.Err(); err == nil || err.Error() != ds.Error() {
		t.Errorf("Err() = %v", err)
	}
	ds.WithFile("a.yaml")
	if ds[1].File != "a.yaml" || ds[5].File != "b.yaml" {
		t.Errorf("WithFile: %q, %q", ds[1].File, ds[5].File)
	}
	if got := ds[1].String(); got != "a.yaml:2:3: a" {
		t.Errorf("after WithFile: %q", got)
	}
}

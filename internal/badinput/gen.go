package badinput

import (
	"fmt"
	"sort"
)

// Corpus generates every case from the fixtures in dir (testdata/models), in a fixed
// order.
func Corpus(dir string) ([]*Case, error) {
	fxs, err := LoadFixtures(dir)
	if err != nil {
		return nil, err
	}
	g := &gen{fx: fxs}
	g.baselines()
	g.modelCases()
	g.nodeCases()
	g.initializerCases()
	g.builtCases()
	g.datasetCases()
	g.configCases()
	seen := map[string]bool{}
	for _, c := range g.cases {
		if seen[c.Name] {
			return nil, fmt.Errorf("two cases named %s", c.Name)
		}
		seen[c.Name] = true
	}
	return g.cases, nil
}

type gen struct {
	fx    map[string]*Fixture
	cases []*Case
}

// fixtureNames are the fixtures' short names, sorted.
func (g *gen) fixtureNames() []string {
	var n []string
	for k := range g.fx {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// add appends c, its name prefixed with its fixture's.
func (g *gen) add(c *Case) *Case {
	c.fixture = g.fx[c.Fixture]
	if c.fixture == nil {
		panic("badinput: no fixture " + c.Fixture)
	}
	c.Name = c.Fixture + "/" + c.Name
	g.cases = append(g.cases, c)
	return c
}

// baselines are the fixtures as they are: they must end ok (they check the harness).
func (g *gen) baselines() {
	for _, f := range g.fixtureNames() {
		g.add(&Case{Name: "baseline", Kind: KindModel, Fixture: f, Unchanged: true, edit: func(w *Workspace) error { return nil }})
	}
}

package pipeline

import "fmt"

// linkProblem is a requirement of an entry that the plan cannot meet.
type linkProblem struct {
	entry *Entry
	msg   string
}

// link resolves every entry's requirements against the entries before it, before any
// model is read: each is provided by the nearest earlier entry whose stage's ResultType
// is the requirement's Result, and a SameModel requirement also needs no model-changing
// entry in between. It sets each entry's needs, the requests of the entries that
// provide, and their last readers; it returns what cannot be met.
func link(entries []*Entry) []linkProblem {
	for _, e := range entries {
		e.needs, e.requests, e.lastReader = nil, nil, -1
	}
	var problems []linkProblem
	for i, e := range entries {
		for _, req := range e.Stage.requires(e.Options) {
			who := e.Stage.Name
			if req.For != "" {
				who += ": " + req.For
			}
			from := -1
			for k := i - 1; k >= 0; k-- {
				if entries[k].Stage.ResultType == req.Result {
					from = k
					break
				}
			}
			if from < 0 {
				problems = append(problems, linkProblem{e, missingProvider(who, req)})
				continue
			}
			if req.SameModel {
				if msg := changedBetween(who, entries, from, i); msg != "" {
					problems = append(problems, linkProblem{e, msg})
					continue
				}
			}
			e.needs = append(e.needs, need{req: req, from: from})
			if req.Request != nil {
				entries[from].requests = append(entries[from].requests, req.Request)
			}
			entries[from].lastReader = i
		}
	}
	return problems
}

func missingProvider(who string, req Requirement) string {
	s := provider(req.Result)
	if s == nil {
		return fmt.Sprintf("%s needs a result of type %v that no stage makes", who, req.Result)
	}
	return fmt.Sprintf("%s needs a %s stage before it (add `- %s:` earlier in stages)", who, s.Name, s.Name)
}

// changedBetween says which entry between from and to changes the model, if one does.
func changedBetween(who string, entries []*Entry, from, to int) string {
	p := entries[from]
	for k := from + 1; k < to; k++ {
		if m := entries[k]; m.Mutates() {
			return fmt.Sprintf("%s reads what %s (%s) made on the model that %s (%s) then changes; put %s after %s",
				who, p.Stage.Name, entryWhere(p), m.Stage.Name, entryWhere(m), p.Stage.Name, m.Stage.Name)
		}
	}
	return ""
}

// entryWhere names an entry for messages: its path, or "added" for an implicit one.
func entryWhere(e *Entry) string {
	if e.Implicit {
		return "added to the plan"
	}
	return e.Path
}

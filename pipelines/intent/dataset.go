package intent

// TestTagName is the workspace tag that marks held-out phrases. HumanFirst's CLU integration
// puts phrases carrying the workspace tag named exactly "Test" into the test set and trains on
// every other labeled phrase; TrainModel does the same, and Evaluate can score that test set.
const TestTagName = "Test"

// DefaultDelimiter joins ancestor names in full intent names.
const DefaultDelimiter = "/"

// Class is one intent the classifier predicts. ID is HumanFirst's intent id, which Classify
// returns verbatim.
type Class struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	FullName string `json:"full_name"`
}

// Sample is one labeled phrase; Label indexes Dataset.Classes.
type Sample struct {
	Text      string
	Label     int
	PhraseID  string
	TestSplit bool
}

// Dataset is a workspace's labeled phrases split into training and test (Test-tagged) sets.
type Dataset struct {
	Classes []Class
	Train   []Sample
	Test    []Sample
	// Skipped counts labeled phrases left out: only negative labels (a rejected suggestion is
	// not a positive example of anything).
	SkippedNegative int
}

// Dataset extracts the labeled phrases. A phrase's label is its first non-negative intent, as
// HumanFirst's reference integrations use intents[0]. Classes are the intents that label at
// least one phrase, in the workspace's intent order, named with full hierarchical names joined
// by delim (DefaultDelimiter when empty).
func (ws *Workspace) Dataset(delim string) *Dataset {
	if delim == "" {
		delim = DefaultDelimiter
	}
	testTags := ws.testTagIDs()
	byID := make(map[string]*Intent, len(ws.Intents))
	for i := range ws.Intents {
		byID[ws.Intents[i].ID] = &ws.Intents[i]
	}
	labels := make([]string, len(ws.Examples))
	used := map[string]bool{}
	ds := &Dataset{}
	for i, ex := range ws.Examples {
		if len(ex.Intents) == 0 {
			continue
		}
		for _, ref := range ex.Intents {
			if !ref.Negative {
				labels[i] = ref.IntentID
				break
			}
		}
		if labels[i] == "" {
			ds.SkippedNegative++
			continue
		}
		used[labels[i]] = true
	}
	index := map[string]int{}
	for _, in := range ws.Intents {
		if !used[in.ID] {
			continue
		}
		index[in.ID] = len(ds.Classes)
		name := in.Name
		if name == "" {
			name = in.ID
		}
		ds.Classes = append(ds.Classes, Class{ID: in.ID, Name: name, FullName: fullName(byID, in.ID, delim)})
	}
	for i, ex := range ws.Examples {
		if labels[i] == "" {
			continue
		}
		s := Sample{Text: ex.Text, Label: index[labels[i]], PhraseID: ex.ID, TestSplit: hasTag(ex.Tags, testTags)}
		if s.TestSplit {
			ds.Test = append(ds.Test, s)
		} else {
			ds.Train = append(ds.Train, s)
		}
	}
	return ds
}

// testTagIDs returns the ids of workspace tags named TestTagName.
func (ws *Workspace) testTagIDs() map[string]bool {
	ids := map[string]bool{}
	for _, t := range ws.Tags {
		if t.Name == TestTagName {
			ids[t.ID] = true
		}
	}
	return ids
}

// hasTag reports whether refs carry a Test tag: by id when the workspace lists its tags, or by
// name when a phrase's reference carries one (exports without a tags section).
func hasTag(refs []TagRef, ids map[string]bool) bool {
	for _, r := range refs {
		if ids[r.ID] || r.Name == TestTagName {
			return true
		}
	}
	return false
}

// classCounts returns how many samples each class has.
func classCounts(samples []Sample, k int) []int {
	n := make([]int, k)
	for _, s := range samples {
		n[s.Label]++
	}
	return n
}

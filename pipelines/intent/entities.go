package intent

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Entities are extracted with a gazetteer built from the workspace: every entity value's key
// value and synonyms, plus every surface text annotated in a training phrase (which is how
// "NYC" comes to mean "New York City"). Matching is case-insensitive, on word boundaries,
// longest match first, without overlaps. Regex entities match their values as RE2 patterns.

// GazetteerEntry is one surface form (or regular expression) of an entity value.
type GazetteerEntry struct {
	Pattern    string `json:"pattern"`
	Regex      bool   `json:"regex,omitempty"`
	EntityID   string `json:"entity_id"`
	EntityName string `json:"entity_name,omitempty"`
	ValueID    string `json:"value_id,omitempty"`
	Value      string `json:"value,omitempty"` // the value's key_value
}

// EntityMatch is an entity found in a text. Start and End are UTF-8 byte offsets, [Start, End).
type EntityMatch struct {
	EntityID   string
	EntityName string
	ValueID    string
	Value      string
	Text       string
	Start, End int
	Score      float32
}

type gazetteer struct {
	entries []GazetteerEntry
	literal *regexp.Regexp // (?i) alternation of the literal patterns, longest first
	byFold  map[string]int // lower-cased pattern → first entry
	regexes []*regexp.Regexp
	regexOf []int // entry index of each regexes[i]
}

// newGazetteer collects the workspace's entity surface forms. Warnings name regex values that
// do not compile as RE2 (HumanFirst's are not guaranteed to be RE2).
func newGazetteer(ws *Workspace) (*gazetteer, []string) {
	var entries []GazetteerEntry
	seen := map[[3]string]bool{}
	add := func(e GazetteerEntry) {
		if strings.TrimSpace(e.Pattern) == "" {
			return
		}
		key := [3]string{e.Pattern, e.EntityID, e.ValueID}
		if !e.Regex {
			key[0] = strings.ToLower(e.Pattern)
		}
		if seen[key] {
			return
		}
		seen[key] = true
		entries = append(entries, e)
	}
	names := map[string]string{}
	for _, ent := range ws.Entities {
		names[ent.ID] = ent.Name
		for _, v := range ent.Values {
			base := GazetteerEntry{Regex: ent.IsRegex, EntityID: ent.ID, EntityName: ent.Name, ValueID: v.ID, Value: v.KeyValue}
			base.Pattern = v.KeyValue
			add(base)
			for _, syn := range v.Synonyms {
				base.Pattern = syn.Value
				add(base)
			}
		}
	}
	for _, ex := range ws.Examples {
		for _, a := range ex.Entities {
			name := a.Name
			if name == "" {
				name = names[a.EntityID]
			}
			add(GazetteerEntry{Pattern: a.Text, EntityID: a.EntityID, EntityName: name, ValueID: a.ValueID, Value: a.Value})
		}
	}
	return compileGazetteer(entries)
}

// compileGazetteer builds the matchers for entries (also used when loading a saved model).
func compileGazetteer(entries []GazetteerEntry) (*gazetteer, []string) {
	g := &gazetteer{entries: entries, byFold: map[string]int{}}
	var warnings []string
	var literals []string
	for i, e := range entries {
		if e.Regex {
			re, err := regexp.Compile(e.Pattern)
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("entity %s value %s: regex %q skipped: %v", e.EntityName, e.ValueID, e.Pattern, err))
				continue
			}
			g.regexes = append(g.regexes, re)
			g.regexOf = append(g.regexOf, i)
			continue
		}
		key := strings.ToLower(e.Pattern)
		if _, dup := g.byFold[key]; !dup {
			g.byFold[key] = i
			literals = append(literals, e.Pattern)
		}
	}
	if len(literals) > 0 {
		// Longest first so that, at one position, "new york city" wins over "new york".
		slices.SortStableFunc(literals, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
		quoted := make([]string, len(literals))
		for i, l := range literals {
			quoted[i] = regexp.QuoteMeta(l)
		}
		re, err := regexp.Compile(`(?i)(?:` + strings.Join(quoted, "|") + `)`)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("entity list skipped: %v", err))
		} else {
			g.literal = re
		}
	}
	return g, warnings
}

// find returns the entities in text, ordered by position, not overlapping.
func (g *gazetteer) find(text string) []EntityMatch {
	if g == nil || text == "" {
		return nil
	}
	var cands []EntityMatch
	if g.literal != nil {
		for pos := 0; pos < len(text); {
			loc := g.literal.FindStringIndex(text[pos:])
			if loc == nil {
				break
			}
			s, e := pos+loc[0], pos+loc[1]
			if e > s && atWordBoundary(text, s, e) {
				if i, ok := g.lookup(text[s:e]); ok {
					cands = append(cands, g.match(i, text, s, e))
				}
				pos = e
				continue
			}
			// Not on a word boundary: try again one rune further.
			_, size := utf8.DecodeRuneInString(text[s:])
			pos = s + max(size, 1)
		}
	}
	for j, re := range g.regexes {
		for _, loc := range re.FindAllStringIndex(text, -1) {
			if loc[1] > loc[0] {
				cands = append(cands, g.match(g.regexOf[j], text, loc[0], loc[1]))
			}
		}
	}
	// Earliest first, then longest; drop anything overlapping a kept match.
	slices.SortStableFunc(cands, func(a, b EntityMatch) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(b.End, a.End))
	})
	out := cands[:0]
	end := -1
	for _, c := range cands {
		if c.Start >= end {
			out = append(out, c)
			end = c.End
		}
	}
	return out
}

func (g *gazetteer) lookup(s string) (int, bool) {
	if i, ok := g.byFold[strings.ToLower(s)]; ok {
		return i, true
	}
	// Case folding and lower-casing disagree on a few runes (e.g. the Kelvin sign).
	for i, e := range g.entries {
		if !e.Regex && strings.EqualFold(e.Pattern, s) {
			return i, true
		}
	}
	return 0, false
}

func (g *gazetteer) match(i int, text string, s, e int) EntityMatch {
	en := g.entries[i]
	return EntityMatch{EntityID: en.EntityID, EntityName: en.EntityName, ValueID: en.ValueID, Value: en.Value,
		Text: text[s:e], Start: s, End: e, Score: 1}
}

// atWordBoundary reports whether text[s:e] does not start or end inside a word: a pattern
// edge that is a letter or digit must not touch another letter or digit.
func atWordBoundary(text string, s, e int) bool {
	first, _ := utf8.DecodeRuneInString(text[s:])
	last, _ := utf8.DecodeLastRuneInString(text[:e])
	if isWord(first) && s > 0 {
		prev, _ := utf8.DecodeLastRuneInString(text[:s])
		if isWord(prev) {
			return false
		}
	}
	if isWord(last) && e < len(text) {
		next, _ := utf8.DecodeRuneInString(text[e:])
		if isWord(next) {
			return false
		}
	}
	return true
}

func isWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

package intent

import (
	"fmt"
	"strings"
	"testing"
)

func TestGazetteer(t *testing.T) {
	ws, err := ParseWorkspace([]byte(`{
	  "intents": [{"id": "i"}],
	  "entities": [
	    {"id": "city", "name": "city", "values": [
	      {"id": "v-nyc", "key_value": "New York City", "synonyms": [{"value": "big apple"}]},
	      {"id": "v-ny", "key_value": "New York"},
	      {"id": "v-zur", "key_value": "Zürich"}]},
	    {"id": "sym", "name": "copyright", "values": [{"id": "v-c", "key_value": "©"}]},
	    {"id": "num", "name": "order", "is_regex": true, "values": [{"id": "v-o", "key_value": "#[0-9]{3,}"}, {"id": "v-bad", "key_value": "(?<=x)y"}]}
	  ],
	  "examples": [{"text": "flying to NYC", "intents": [{"intent_id": "i"}],
	    "entities": [{"entity_id": "city", "name": "city", "text": "NYC", "value": "New York City", "value_id": "v-nyc", "span": {"from_character": 10, "to_character": 13}}]}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	g, warnings := newGazetteer(ws)
	if len(warnings) != 1 || !strings.Contains(warnings[0], "(?<=x)y") {
		t.Errorf("warnings %q", warnings)
	}
	cases := []struct{ text, want string }{
		{"hi there good morning new york", "v-ny:new york@22-30"},
		{"I love NEW YORK CITY!", "v-nyc:NEW YORK CITY@7-20"},
		{"the big apple and nyc", "v-nyc:big apple@4-13 v-nyc:nyc@18-21"},
		{"newyorker new yorkers", ""},                // inside words
		{"grüezi aus Zürich.", "v-zur:Zürich@12-19"}, // UTF-8 byte offsets
		{"©2024 order #12345", "v-c:©@0-2 v-o:#12345@13-19"},
		{"", ""},
	}
	for _, c := range cases {
		var got []string
		for _, m := range g.find(c.text) {
			if c.text[m.Start:m.End] != m.Text {
				t.Errorf("%q: span [%d,%d) is %q, text %q", c.text, m.Start, m.End, c.text[m.Start:m.End], m.Text)
			}
			got = append(got, fmt.Sprintf("%s:%s@%d-%d", m.ValueID, m.Text, m.Start, m.End))
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%q: got %q, want %q", c.text, strings.Join(got, " "), c.want)
		}
	}
}

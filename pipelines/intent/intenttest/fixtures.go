package intenttest

import _ "embed"

// SpecWorkspace is HumanFirst's example workspace (HF JSON, 7 intents, 71 phrases, 3 entities),
// the fixture of their reference integrations' tests; see testdata/README.md.
//
//go:embed testdata/workspace.json
var SpecWorkspace []byte

// SpecHierarchicalWorkspace is HumanFirst's hierarchical sample workspace (parent intents and
// entity parts).
//
//go:embed testdata/integration_workspace.json
var SpecHierarchicalWorkspace []byte

// Fixture expectations from HumanFirst's reference test (example_integration/test_main.py).
const (
	SpecUtterance     = "hi there good morning new york"
	SpecGreetIntentID = "intent-GYEKPUFIJ5MEVINPZ6TNZXJS"
	SpecTimeEntityID  = "entity-TNOSTSLZ6BC4XEOFBP5GF4ZH"
	SpecMorningValue  = "entval-BF67VRX5UVA5DJTMCEUX4R2J"
	SpecMorningStart  = 14
	SpecMorningEnd    = 21
)

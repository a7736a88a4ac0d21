// Package schema is what the comparison harness's commands share of results.json:
// cmd/compare writes it, cmd/chart draws it.
package schema

// Comparison is one of spliced's figures against one peer's in the same run.
type Comparison struct {
	Section string `json:"section"`
	Metric  string `json:"metric"`
	// HigherBetter says which way the metric is good; Ratio is oriented by it, so that
	// above 1 is always in softnet's favour: softnet ÷ peer when higher is better, peer
	// ÷ softnet when lower is.
	HigherBetter bool    `json:"higher_better"`
	Softnet      string  `json:"softnet"`
	Peer         string  `json:"peer"`
	SoftnetValue float64 `json:"softnet_value"`
	PeerValue    float64 `json:"peer_value"`
	Ratio        float64 `json:"ratio"`
	// Ceiling marks the direct path (no relay): a bound no relay can pass, not a
	// competitor.
	Ceiling bool `json:"ceiling,omitempty"`
}

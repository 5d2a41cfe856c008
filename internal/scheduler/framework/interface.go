package framework

import (
	"strings"
)

// Code says how a plugin judged a pod on a node.
type Code int

const (
	// Success: the node can take the pod.
	Success Code = iota
	// Unschedulable: the node cannot take the pod now, but evicting
	// pods from it could change that (not enough cpu, ports taken).
	Unschedulable
	// UnschedulableAndUnresolvable: no eviction would help (taints,
	// selectors, cordon).
	UnschedulableAndUnresolvable
	// Error: the plugin failed; the pod is retried.
	Error
	// Skip, returned by a PreFilter, says the plugin has nothing to
	// check for this pod: the cycle leaves out its Filter, so pods
	// without volumes, say, pay nothing per node for the volume
	// filters.
	Skip
)

// Status is a plugin's verdict. A nil *Status means success.
type Status struct {
	Code Code
	// Reasons are the short texts counted in a FailedScheduling message,
	// such as "Insufficient cpu".
	Reasons []string
}

// NewStatus returns a status with code and reasons.
func NewStatus(code Code, reasons ...string) *Status {
	return &Status{Code: code, Reasons: reasons}
}

// IsSuccess reports whether s is nil or Success.
func (s *Status) IsSuccess() bool { return s == nil || s.Code == Success }

// Message joins the reasons.
func (s *Status) Message() string {
	if s == nil {
		return ""
	}
	return strings.Join(s.Reasons, ", ")
}

// CycleState carries what PreFilter computed for one pod to the Filter and
// Score calls of the same cycle. It is used by one goroutine at a time.
// It holds a handful of entries read once per node and plugin, hundreds
// of times a cycle: a scan of a short slice, whose keys are the plugins'
// constant strings (equal pointers compare at once), costs a fraction of
// hashing the key into a map.
type CycleState struct {
	keys   []string
	values []any
}

// NewCycleState returns an empty state.
func NewCycleState() *CycleState { return &CycleState{} }

// Write stores v under key.
func (c *CycleState) Write(key string, v any) {
	for i, k := range c.keys {
		if k == key {
			c.values[i] = v
			return
		}
	}
	c.keys = append(c.keys, key)
	c.values = append(c.values, v)
}

// Read returns what was stored under key.
func (c *CycleState) Read(key string) (any, bool) {
	for i, k := range c.keys {
		if k == key {
			return c.values[i], true
		}
	}
	return nil, false
}

// Plugin is anything with a name; names appear in logs and in the score
// weights of the scheduler's Config.
type Plugin interface {
	Name() string
}

// PreFilterPlugin looks at the whole snapshot once per pod, before the
// per-node filters, to compute what those need (such as pod counts per
// topology domain).
type PreFilterPlugin interface {
	Plugin
	PreFilter(state *CycleState, pod *PodInfo, nodes NodeLister) *Status
}

// FilterPlugin decides whether a node can take a pod.
type FilterPlugin interface {
	Plugin
	Filter(state *CycleState, pod *PodInfo, node *NodeInfo) *Status
}

// PreScorePlugin computes, once per pod and over the feasible nodes only,
// what Score needs.
type PreScorePlugin interface {
	Plugin
	PreScore(state *CycleState, pod *PodInfo, feasible []*NodeInfo) *Status
}

// ScorePlugin ranks a feasible node for a pod. Scores are normalised to
// 0..MaxNodeScore, then weighted and summed.
type ScorePlugin interface {
	Plugin
	Score(state *CycleState, pod *PodInfo, node *NodeInfo) int64
}

// ScoreNormalizer is a ScorePlugin whose raw scores need rescaling to
// 0..MaxNodeScore once all nodes are scored.
type ScoreNormalizer interface {
	NormalizeScores(state *CycleState, pod *PodInfo, scores []int64)
}

// MaxNodeScore is the best score a plugin gives a node.
const MaxNodeScore int64 = 100

// NormalizeToMax rescales scores so the largest becomes MaxNodeScore; with
// reverse, the largest becomes 0 and zero becomes MaxNodeScore (for
// "fewer is better" counts such as intolerable soft taints).
func NormalizeToMax(scores []int64, reverse bool) {
	var top int64
	for _, s := range scores {
		top = max(top, s)
	}
	for i, s := range scores {
		switch {
		case top == 0 && reverse:
			scores[i] = MaxNodeScore
		case top == 0:
			scores[i] = 0
		case reverse:
			scores[i] = MaxNodeScore - s*MaxNodeScore/top
		default:
			scores[i] = s * MaxNodeScore / top
		}
	}
}

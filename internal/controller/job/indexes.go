package job

import (
	"sort"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// noIndex is the completion index of a pod that has none (or a bad one).
const noIndex = -1

// interval is a closed range of completion indexes.
type interval struct{ first, last int }

// intervals is a sorted list of disjoint, non-adjacent intervals: the
// in-memory form of status.completedIndexes and status.failedIndexes.
type intervals []interval

// parseIntervals reads the compressed form ("1,3-5,7"), dropping what lies
// at or beyond completions and pieces that do not parse, as upstream does
// with a status someone else corrupted.
func parseIntervals(s string, completions int) intervals {
	var out intervals
	if s == "" {
		return nil
	}
	for _, piece := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(piece, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 || first >= completions {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				continue
			}
			last = min(last, completions-1)
		}
		out = append(out, interval{first, last})
	}
	return out.merge(nil)
}

// String is the compressed form upstream writes: single indexes, "a,b" for
// two neighbours and "a-b" for longer runs.
func (iv intervals) String() string {
	var b strings.Builder
	for _, v := range iv {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(v.first))
		switch {
		case v.last == v.first+1:
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(v.last))
		case v.last > v.first:
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(v.last))
		}
	}
	return b.String()
}

func (iv intervals) total() int {
	n := 0
	for _, v := range iv {
		n += v.last - v.first + 1
	}
	return n
}

func (iv intervals) has(ix int) bool {
	i := sort.Search(len(iv), func(i int) bool { return iv[i].last >= ix })
	return i < len(iv) && iv[i].first <= ix
}

// merge returns the union of two interval lists in normal form.
func (iv intervals) merge(other intervals) intervals {
	all := make(intervals, 0, len(iv)+len(other))
	all = append(append(all, iv...), other...)
	sort.Slice(all, func(i, j int) bool { return all[i].first < all[j].first })
	var out intervals
	for _, v := range all {
		if n := len(out); n > 0 && v.first <= out[n-1].last+1 {
			out[n-1].last = max(out[n-1].last, v.last)
			continue
		}
		out = append(out, v)
	}
	return out
}

// withIndexes returns the union with single indexes.
func (iv intervals) withIndexes(ixs []int) intervals {
	more := make(intervals, len(ixs))
	for i, ix := range ixs {
		more[i] = interval{ix, ix}
	}
	return iv.merge(more)
}

// completionIndex reads a pod's index annotation.
func completionIndex(pod *corev1.Pod) int {
	v, ok := pod.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return noIndex
	}
	ix, err := strconv.Atoi(v)
	if err != nil || ix < 0 {
		return noIndex
	}
	return ix
}

// validIndex reports whether a pod carries an index the job can count.
func validIndex(pod *corev1.Pod, completions int32) bool {
	ix := completionIndex(pod)
	return ix != noIndex && ix < int(completions)
}

func indexesOf(pods []*corev1.Pod) []int {
	var out []int
	for _, p := range pods {
		if ix := completionIndex(p); ix != noIndex {
			out = append(out, ix)
		}
	}
	return out
}

// firstPendingIndexes returns up to count of the lowest indexes below
// completions that no pod covers: not succeeded, not running, not failed
// for good (and, when only failed pods are replaced, not terminating).
func firstPendingIndexes(count, completions int, taken intervals) []int {
	var out []int
	next := 0
	for _, v := range taken {
		for ; next < v.first && next < completions && len(out) < count; next++ {
			out = append(out, next)
		}
		next = max(next, v.last+1)
	}
	for ; next < completions && len(out) < count; next++ {
		out = append(out, next)
	}
	return out
}

// duplicateIndexPods splits the active pods of an Indexed job into those to
// remove (no index, an index out of range, or a second pod for an index,
// where the pod furthest along is kept) and the rest.
func duplicateIndexPods(pods []*corev1.Pod, completions int32) (rm, keep []*corev1.Pod) {
	byIndex := map[int][]*corev1.Pod{}
	for _, p := range pods {
		if !validIndex(p, completions) {
			rm = append(rm, p)
			continue
		}
		ix := completionIndex(p)
		byIndex[ix] = append(byIndex[ix], p)
	}
	ixs := make([]int, 0, len(byIndex))
	for ix := range byIndex {
		ixs = append(ixs, ix)
	}
	sort.Ints(ixs)
	for _, ix := range ixs {
		same := byIndex[ix]
		sort.SliceStable(same, func(i, j int) bool { return deleteBefore(same[i], same[j]) })
		rm = append(rm, same[:len(same)-1]...)
		keep = append(keep, same[len(same)-1])
	}
	return rm, keep
}

package wire

import (
	"slices"
	"strconv"
	"strings"
)

// Partitions of a partitioned durable consumer CONSUMER of store NAME are
// kept in the stream ES_NAME_PARTITIONS_CONSUMER: a work-queue mirror of
// ES_NAME (so an event keeps its store sequence) whose subject transforms
// put the entity's partition in front of the event's own tokens:
//
//	$ES.NAME.<entity-type>.<entity-id>.<event-type>
//	  → $ES_PART.<partition>.<entity-type>.<entity-id>.<event-type>
//
// The mirror copies only the entity and event types the consumer's filters
// name (coarsely: an entity ID in a filter is not looked at), and the work
// queue drops each copy once it is acknowledged. Partition k is read by the
// durable consumer "p<k>" of that stream. Members of the group running the
// consumer find each other on the core NATS subject
// $ES_GROUP.NAME.CONSUMER (nothing is stored there).
const (
	partitionStreamInfix   = "_PARTITIONS_"
	partitionSubjectPrefix = "$ES_PART."
	groupSubjectPrefix     = "$ES_GROUP."

	// PartitionEntityAt is the position of the entity-type token in a
	// subject of a partition stream, as in a store's.
	PartitionEntityAt = 2

	// Metadata keys of a partition stream.
	MetaPartitions = "rita-partitions"
	MetaStore      = "rita-store"
	MetaConsumer   = "rita-consumer"
)

// PartitionStream is the stream of the partitions of consumer of store.
func PartitionStream(store, consumer string) string {
	return StreamPrefix + store + partitionStreamInfix + consumer
}

// PartitionConsumer is the name of partition k's consumer on its stream.
func PartitionConsumer(k int) string { return "p" + strconv.Itoa(k) }

// PartitionSubjects matches every event of partition k.
func PartitionSubjects(k int) string {
	return partitionSubjectPrefix + strconv.Itoa(k) + ".>"
}

// GroupSubject is where the processes running consumer of store announce
// themselves.
func GroupSubject(store, consumer string) string {
	return groupSubjectPrefix + store + "." + consumer
}

// StoreSubject returns the subject under which the event at subject of a
// partition stream of store was stored; ok is false for a subject of
// another shape.
func StoreSubject(store, subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, partitionSubjectPrefix)
	if !ok {
		return "", false
	}
	_, event, ok := strings.Cut(rest, ".")
	if !ok {
		return "", false
	}
	return SubjectPrefix + store + "." + event, true
}

// Transform is one subject transform of a partition stream's mirror.
type Transform struct{ Source, Destination string }

// PartitionTransforms returns the subject transforms that copy the events
// matching patterns (subject patterns of store, as FilterPattern makes
// them) into partitions partitions, and whether the copies are exactly the
// matching events (otherwise the readers must filter them again).
//
// Every transform that can take an event of an entity hashes the same
// tokens of it, so that an entity has one partition: the entity type and
// ID when some pattern leaves the entity type open, the ID alone when every
// pattern names its entity type. The sources do not overlap.
func PartitionTransforms(store string, partitions int, patterns []string) ([]Transform, bool) {
	prefix := SubjectPrefix + store + "."
	type shape struct{ typ, evt string }
	var shapes []shape
	exact := true
	anyType := false
	for _, p := range patterns {
		toks := strings.Split(strings.TrimPrefix(p, prefix), ".")
		for len(toks) < 3 {
			toks = append(toks, ">")
		}
		for i, t := range toks {
			if t == ">" {
				for j := i; j < 3; j++ {
					toks[j] = "*"
				}
				toks = toks[:3]
				break
			}
		}
		if toks[1] != "*" {
			exact = false // an entity ID is not looked at
		}
		if toks[0] == "*" {
			anyType = true
		}
		shapes = append(shapes, shape{toks[0], toks[2]})
	}
	if len(patterns) == 0 {
		shapes, anyType = []shape{{"*", "*"}}, true
	}
	if anyType {
		// One transform per event type, or one for all; all hash type and ID.
		for i := range shapes {
			if shapes[i].typ != "*" {
				exact = false
				shapes[i].typ = "*"
			}
		}
	}
	// Within an entity type, an open event type takes every other.
	open := map[string]bool{}
	for _, s := range shapes {
		if s.evt == "*" {
			open[s.typ] = true
		}
	}
	var kept []shape
	for _, s := range shapes {
		if open[s.typ] && s.evt != "*" {
			exact = false
			continue
		}
		if !slices.Contains(kept, s) {
			kept = append(kept, s)
		}
	}
	n := strconv.Itoa(partitions)
	out := make([]Transform, 0, len(kept))
	for _, s := range kept {
		var dst string
		switch {
		case s.typ == "*" && s.evt == "*":
			dst = "{{partition(" + n + ",1,2)}}.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}"
		case s.typ == "*":
			dst = "{{partition(" + n + ",1,2)}}.{{wildcard(1)}}.{{wildcard(2)}}." + s.evt
		case s.evt == "*":
			dst = "{{partition(" + n + ",1)}}." + s.typ + ".{{wildcard(1)}}.{{wildcard(2)}}"
		default:
			dst = "{{partition(" + n + ",1)}}." + s.typ + ".{{wildcard(1)}}." + s.evt
		}
		out = append(out, Transform{
			Source:      prefix + s.typ + ".*." + s.evt,
			Destination: partitionSubjectPrefix + dst,
		})
	}
	return out, exact
}

package rita

import "maps"

// Metadata keys that Decide, DecideAndEvolve and their retrying variants set
// on every event a command produces, so that the events can be traced back to
// the command (causation) and to the request or conversation it belongs to
// (correlation). They are stored like any other metadata, as the headers
// Rita-Meta-causation-id and Rita-Meta-correlation-id.
//
// A value the decider set on an event is never overwritten.
const (
	// MetaCausationID is the key of the ID of the command that caused the
	// event: Command.ID (filled from the Manager's ID generator when empty).
	MetaCausationID = "causation-id"

	// MetaCorrelationID is the key of the ID that correlates everything done
	// for one request: the command's own Meta[MetaCorrelationID] when it has
	// one, so that the ID flows from command to events to the commands they
	// trigger; otherwise the command's ID, which then starts the correlation.
	MetaCorrelationID = "correlation-id"
)

// correlate sets the causation and correlation IDs of cmd on events, leaving
// keys that are already set alone. It copies an event's Meta before adding to
// it, since a decider may share one map between events or keep it. Nil events
// are left for Append to refuse.
func correlate(cmd *Command, events []*Event) {
	correlation := cmd.Meta[MetaCorrelationID]
	if correlation == "" {
		correlation = cmd.ID
	}
	for _, e := range events {
		if e == nil {
			continue
		}
		_, hasCause := e.Meta[MetaCausationID]
		_, hasCorr := e.Meta[MetaCorrelationID]
		if hasCause && hasCorr {
			continue
		}
		meta := make(map[string]string, len(e.Meta)+2)
		maps.Copy(meta, e.Meta)
		if !hasCause {
			meta[MetaCausationID] = cmd.ID
		}
		if !hasCorr {
			meta[MetaCorrelationID] = correlation
		}
		e.Meta = meta
	}
}

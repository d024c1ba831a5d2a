package wire

import "strconv"

// Parked events of store NAME are kept in the stream ES_NAME_PARKED on
// $ES_PARKED.NAME.>:
//
//	entry   $ES_PARKED.NAME.<consumer>.event.<entity-type>.<entity-id>.<sequence>
//	retry   $ES_PARKED.NAME.<consumer>.retry.<entity-type>.<entity-id>
//
// An entry is a copy of the event (its Rita-* headers and payload) with the
// Rita-Parked-* headers below; the stream keeps one message per subject.
const (
	parkedStreamSuffix  = "_PARKED"
	parkedSubjectPrefix = "$ES_PARKED."

	HdrParkedConsumer  = "Rita-Parked-Consumer"
	HdrParkedSequence  = "Rita-Parked-Sequence"
	HdrParkedSubject   = "Rita-Parked-Subject"
	HdrParkedReason    = "Rita-Parked-Reason"
	HdrParkedAttempts  = "Rita-Parked-Attempts"
	HdrParkedEventID   = "Rita-Parked-Event-Id"
	HdrParkedStored    = "Rita-Parked-Stored"
	HdrParkedBlockedBy = "Rita-Parked-Blocked-By"
	HdrParkedPrefix    = "Rita-Parked-"
	HdrPrefix          = "Rita-"

	// ParkedEntityAt is the position of the entity-type token in an entry
	// or retry subject.
	ParkedEntityAt = 4
)

// ParkedStream is the stream of the store's parked events.
func ParkedStream(store string) string { return StreamPrefix + store + parkedStreamSuffix }

// ParkedSubjects is the subject pattern of the parked stream.
func ParkedSubjects(store string) string { return parkedSubjectPrefix + store + ".>" }

// ParkedConsumerSubjects matches everything of consumer in the parked
// stream: its entries and retry requests.
func ParkedConsumerSubjects(store, consumer string) string {
	return parkedSubjectPrefix + store + "." + consumer + ".>"
}

// ParkedEntry is consumer's entry for the event at seq of entity (the two
// tokens "<type>.<id>").
func ParkedEntry(store, consumer, entity string, seq uint64) string {
	return parkedSubjectPrefix + store + "." + consumer + ".event." + entity + "." + strconv.FormatUint(seq, 10)
}

// ParkedEntityEntries matches consumer's entries of entity.
func ParkedEntityEntries(store, consumer, entity string) string {
	return parkedSubjectPrefix + store + "." + consumer + ".event." + entity + ".*"
}

// ParkedEntries matches consumer's entries; consumer may be "*".
func ParkedEntries(store, consumer string) string {
	return parkedSubjectPrefix + store + "." + consumer + ".event.*.*.*"
}

// ParkedEntryAt matches consumer's entry of the event at seq, whatever its
// entity.
func ParkedEntryAt(store, consumer string, seq uint64) string {
	return parkedSubjectPrefix + store + "." + consumer + ".event.*.*." + strconv.FormatUint(seq, 10)
}

// RetrySubject is where a request to retry consumer's parked events of
// entity is kept.
func RetrySubject(store, consumer, entity string) string {
	return parkedSubjectPrefix + store + "." + consumer + ".retry." + entity
}

// RetryRequests matches consumer's retry requests.
func RetryRequests(store, consumer string) string {
	return parkedSubjectPrefix + store + "." + consumer + ".retry.*.*"
}

package rita

// Expect states what an Append expects the store to hold, for optimistic
// concurrency control: the last event stored on the subjects matching Pattern
// must have the stream sequence Sequence (0: no event at all). If it does not,
// Append stores nothing and fails with ErrSequenceConflict.
//
// Pattern is a filter as accepted by WithFilters ("<entity-type>",
// "<entity-type>.<entity-id>" or "<entity-type>.<entity-id>.<event-type>",
// wildcards allowed). Empty means the event's own entity.
type Expect struct {
	Sequence uint64
	Pattern  string
}

// ExpectSequence can be set to specify the expected sequence number for
// optimistic concurrency control. If the current last sequence number does not
// match the provided value, the append will fail. If nil, no sequence check
// will be performed. The subject defaults to the entity's pattern.
func ExpectSequence(seq uint64) *Expect {
	return &Expect{Sequence: seq}
}

// ExpectSequenceSubject is like ExpectSequence but checks the last sequence
// of another pattern, such as the entity type alone ("order": every order)
// or one event type ("*.*.order-shipped").
func ExpectSequenceSubject(seq uint64, pattern string) *Expect {
	return &Expect{Sequence: seq, Pattern: pattern}
}

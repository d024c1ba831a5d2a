package rita

// headerValues hands out one-element header value slices cut from one
// backing array, so that building a message's headers costs one allocation
// for all its values instead of one per header. Each slice has a capacity of
// one, so appending to it (nats.Header.Add) copies instead of overwriting
// the next value.
type headerValues []string

// one returns a value slice holding v. The receiver must have been made with
// enough capacity for every value; beyond it, one still works but allocates.
func (vals *headerValues) one(v string) []string {
	*vals = append(*vals, v)
	n := len(*vals)
	return (*vals)[n-1 : n : n]
}

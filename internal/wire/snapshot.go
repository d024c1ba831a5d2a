package wire

import "strings"

// Snapshots of the models of store NAME live in the key-value bucket
// rita-snapshots-NAME, one key per entity and model,
// "<entity-type>.<entity-id>.<name>", each token escaped (EscapeToken). A
// value is the model's bytes with these headers.
const (
	HdrSnapFormat   = "Rita-Snapshot-Format"   // SnapshotFormat
	HdrSnapVersion  = "Rita-Snapshot-Version"  // the model's version
	HdrSnapSequence = "Rita-Snapshot-Sequence" // the entity's last event in it
	HdrSnapCount    = "Rita-Snapshot-Count"    // the entity's events in it
	HdrSnapStore    = "Rita-Snapshot-Store"    // when the store's stream was created

	SnapshotFormat = "1"
	snapshotBucket = "rita-snapshots-"
)

// SnapshotBucket is the key-value bucket of the store's snapshots.
func SnapshotBucket(store string) string { return snapshotBucket + EscapeToken(store) }

// SnapshotStream is the stream behind the snapshot bucket.
func SnapshotStream(store string) string { return "KV_" + SnapshotBucket(store) }

// SnapshotSubject is the subject of the snapshot of the named model of
// entity ("<type>.<id>").
func SnapshotSubject(store, entity, name string) string {
	typ, id, _ := strings.Cut(entity, ".")
	return "$KV." + SnapshotBucket(store) + "." + EscapeToken(typ) + "." + EscapeToken(id) + "." + EscapeToken(name)
}

// The data keys of the entities of store NAME whose events hold personal
// data live in the key-value bucket rita-keys-NAME (history 1), one key per
// entity, "<entity-type>.<entity-id>", each token escaped (EscapeToken).
// A value is JSON: {"v": the key's version (when it was made, in Unix
// nanoseconds), "kid": the provider's key that wrapped it, "key": the
// wrapped data key, base64}. The Rita-Encrypted header of a payload sealed
// with the key names its version.
const (
	HdrEncrypted = "Rita-Encrypted"
	keyBucket    = "rita-keys-"
)

// KeyBucket is the key-value bucket of the store's data keys.
func KeyBucket(store string) string { return keyBucket + EscapeToken(store) }

// KeyStream is the stream behind a key-value bucket.
func KeyStream(bucket string) string { return "KV_" + bucket }

// KeyName is the key of entity's data key in the bucket.
func KeyName(entity string) string {
	typ, id, _ := strings.Cut(entity, ".")
	return EscapeToken(typ) + "." + EscapeToken(id)
}

// KeySubject is the subject of entity's data key in bucket.
func KeySubject(bucket, entity string) string { return "$KV." + bucket + "." + KeyName(entity) }

// SnapshotsOf is the subject pattern of every snapshot of entity.
func SnapshotsOf(store, entity string) string {
	typ, id, _ := strings.Cut(entity, ".")
	return "$KV." + SnapshotBucket(store) + "." + EscapeToken(typ) + "." + EscapeToken(id) + ".*"
}

// EscapeToken makes s usable in a bucket name and as a key token: ASCII
// letters, digits and '-' stay, every other byte becomes '_' and two hex
// digits. Distinct strings stay distinct.
func EscapeToken(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if !isPlainByte(s[i]) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isPlainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xF])
	}
	return b.String()
}

func isPlainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
}

// UnescapeToken undoes EscapeToken; false for a token EscapeToken cannot
// have made.
func UnescapeToken(tok string) (string, bool) {
	if !strings.Contains(tok, "_") {
		return tok, true
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '_' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(tok) {
			return "", false
		}
		hi, ok1 := unhex(tok[i+1])
		lo, ok2 := unhex(tok[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// SplitSnapshotSubject returns the entity ("<type>.<id>") and model name of
// a snapshot's subject in the bucket of store; false for another subject.
func SplitSnapshotSubject(store, subject string) (entity, name string, ok bool) {
	rest, found := strings.CutPrefix(subject, "$KV."+SnapshotBucket(store)+".")
	if !found {
		return "", "", false
	}
	toks := strings.Split(rest, ".")
	if len(toks) != 3 {
		return "", "", false
	}
	var plain [3]string
	for i, tok := range toks {
		if plain[i], found = UnescapeToken(tok); !found {
			return "", "", false
		}
	}
	return plain[0] + "." + plain[1], plain[2], true
}

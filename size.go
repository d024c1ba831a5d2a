package rita

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The size limits of a message, checked before anything is published so
// that an event too large for the server is refused as a whole, not halfway
// through a batch.
const (
	// maxHeaderSize is the most header bytes JetStream stores with a
	// message.
	maxHeaderSize = 64*1024 - 1

	// sizeMargin leaves room for the headers Append adds to a message of an
	// atomic batch after the check (Nats-Batch-Id and the like).
	sizeMargin = 128
)

// JetStream error codes of a message that is too large.
const (
	errCodeMessageTooLarge jetstream.ErrorCode = 10054
	errCodeHeaderTooLarge  jetstream.ErrorCode = 10097
)

// checkSize refuses msg with ErrEventTooLarge if its headers do not fit
// JetStream's limit or it does not fit maxPayload (0: unknown).
func checkSize(msg *nats.Msg, maxPayload int64) error {
	hdr := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range msg.Header {
		for _, v := range vs {
			hdr += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	if hdr+sizeMargin > maxHeaderSize {
		return fmt.Errorf("%w: %d bytes of headers (metadata included), at most %d", ErrEventTooLarge, hdr, maxHeaderSize-sizeMargin)
	}
	if size := int64(hdr + len(msg.Data)); maxPayload > 0 && size+sizeMargin > maxPayload {
		return fmt.Errorf("%w: %d bytes with its headers, the server takes at most %d", ErrEventTooLarge, size, maxPayload-sizeMargin)
	}
	return nil
}

// tooLarge reports whether a publish failed because the message was too
// large for the client, the server or the stream.
func tooLarge(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || hasErrorCode(err, errCodeMessageTooLarge) || hasErrorCode(err, errCodeHeaderTooLarge)
}

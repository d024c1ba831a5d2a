// Package jsapi holds what rita asks of JetStream beyond nats.go's
// jetstream package, and how it reads the answers: the error codes rita acts
// on and which failures are transient, the one retry policy of reads and
// writes, several requests in flight on one inbox, the stream leader's last
// message on a subject, direct batch gets, per-subject counts, the atomic
// batch publish, and the server version check.
//
// Nothing here knows rita's API or wire format: callers pass subjects and
// stream names, and wrap the errors returned with the package's sentinels.
package jsapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream error codes rita acts on. Those nats.go exports are taken from
// it; the others are the server's (nats-server's errors.json).
const (
	CodeWrongLastSequence         = jetstream.JSErrCodeStreamWrongLastSequence
	CodeWrongLastSequenceConstant = jetstream.JSErrCodeStreamWrongLastSequenceConstant
	CodeMessageNotFound           = jetstream.JSErrCodeMessageNotFound
	CodeStreamNotFound            = jetstream.JSErrCodeStreamNotFound
	CodeMessageTooLarge           = jetstream.JSErrCodeStreamMessageExceedsMaximum

	CodeClusterNotAvailable    jetstream.ErrorCode = 10008
	CodeClusterNotLeader       jetstream.ErrorCode = 10009
	CodeSequenceNotFound       jetstream.ErrorCode = 10043 // delete of a message that is not there
	CodeStreamSequenceNotMatch jetstream.ErrorCode = 10063
	CodeHeaderTooLarge         jetstream.ErrorCode = 10097
	CodeDuplicateInProcess     jetstream.ErrorCode = 10158
	CodeBatchIncomplete        jetstream.ErrorCode = 10176
	CodeBatchDuplicate         jetstream.ErrorCode = 10201
	CodeBatchTooManyInflight   jetstream.ErrorCode = 10210
	CodeBatchPublishInflight   jetstream.ErrorCode = 10211

	// A full stream, account or server.
	CodeAccountResourcesExceeded jetstream.ErrorCode = 10002 // the account's JetStream limits
	CodeInsufficientResources    jetstream.ErrorCode = 10023 // the server's JetStream storage
	CodeMemoryResourcesExceeded  jetstream.ErrorCode = 10028
	CodeStorageResourcesExceeded jetstream.ErrorCode = 10047
	CodeStoreFailed              jetstream.ErrorCode = 10077 // the stream refused to store: its description says why
)

// HasCode reports whether err carries the server's error code.
func HasCode(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

// Transient reports whether err may go away by itself, so that the same
// request is worth sending again: nobody answered (no responders, a 503
// status), nobody answered in time, the connection is between servers, or
// the server asked to try again (no leader, a cluster not available, a
// batch or duplicate check still in process). A permission violation is
// never transient, even when it is wrapped with a timeout.
func Transient(err error) bool {
	if errors.Is(err, ErrPermissionDenied) {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case CodeClusterNotAvailable, CodeClusterNotLeader, CodeStreamSequenceNotMatch,
			CodeDuplicateInProcess, CodeBatchIncomplete, CodeBatchTooManyInflight, CodeBatchPublishInflight:
			return true
		}
		return apiErr.Code == 503 && apiErr.ErrorCode == 0
	}
	return NoResponders(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrStaleConnection)
}

// NoResponders reports whether a request found nobody to answer it: the
// stream or its leader is away, or the stream does not exist.
func NoResponders(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// Final reports whether a failure to reach a stream will not go away by
// trying again: the stream is gone, the connection is closed, the server
// refused the request as malformed, or its permissions refused it.
func Final(err error) bool {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, ErrPermissionDenied) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == 400
}

// Refusal is a server's error answer that prints as its description alone,
// while errors.As still finds the *jetstream.APIError.
type Refusal struct{ *jetstream.APIError }

func (r Refusal) Error() string { return r.Description }
func (r Refusal) Unwrap() error { return r.APIError }

// requestError marks a request that found no responders as one that found
// no stream, as jetstream does for its own requests.
func requestError(err error) error {
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("%w: %w", jetstream.ErrNoStreamResponse, err)
	}
	return err
}

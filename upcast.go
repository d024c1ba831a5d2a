package rita

import (
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/synadia-labs/rita/types"
)

// Versions of event types on the wire.
//
// With a type registry, Append stores the registered version of each
// event's type (types.Type.Version) in the header Rita-Version, as a decimal
// integer, and only when it is above 1: an event without the header is
// version 1, so stores written before types had versions, and by other rita
// implementations, read as they always did. When a stored event is read
// (Evolve, Watch and everything built on them), an older version, or an old
// type name, is brought up to the registered version through the registry's
// upcasters before the payload is decoded; the event's Type is then the
// type's current name, while its Subject keeps the name it was stored under.
// Without a registry the header is neither written nor read.

// setVersion adds the Rita-Version header to msg, an event message built by
// newEventMsg, when its type's registered version is above 1.
func setVersion(reg *types.Registry, msg *nats.Msg) {
	if reg == nil {
		return
	}
	if v, err := reg.Version(msg.Header.Get(hdrType)); err == nil && v > 1 {
		msg.Header[hdrVersion] = []string{strconv.Itoa(v)}
	}
}

// upcastEvent brings the payload of e, read with headers h, to the
// registered version of its type, and sets e.Type to the type's current
// name. It returns the payload to decode.
func upcastEvent(reg *types.Registry, e *Event, h nats.Header, data []byte) ([]byte, error) {
	version := 1
	if s := h.Get(hdrVersion); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("header %s: %q is not a version (an integer from 1)", hdrVersion, s)
		}
		version = v
	}
	name, out, err := reg.Upcast(e.Type, version, h.Get(hdrCodec), data)
	if err != nil {
		return nil, err
	}
	e.Type = name
	return out, nil
}

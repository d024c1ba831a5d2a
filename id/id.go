// Package id generates unique identifiers for entities, events and
// messages.
package id

import (
	"github.com/google/uuid"
	"github.com/nats-io/nuid"
)

// ID generates unique identifiers. Implementations must be safe for
// concurrent use by multiple goroutines.
type ID interface {
	// New returns a new identifier, different from every other it returned.
	New() string
}

// NUID generates NATS unique identifiers: 22 base-62 characters, fast and
// safe for concurrent use. It is the default generator.
//
// NUID is a variable so that it can be passed as a value; do not reassign it.
var NUID ID = nuidGen{}

// UUID generates random (version 4) UUIDs in their canonical 36-character
// form, such as "9b2f6c1e-3a5d-4c8e-b1f0-7d2a9e4c6b13". It is safe for
// concurrent use.
//
// UUID is a variable so that it can be passed as a value; do not reassign it.
var UUID ID = uuidGen{}

// nuidGen implements ID with the nuid package's locked global generator.
type nuidGen struct{}

func (nuidGen) New() string { return nuid.Next() }

// uuidGen implements ID with random UUIDs.
type uuidGen struct{}

func (uuidGen) New() string { return uuid.NewString() }

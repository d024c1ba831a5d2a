package id_test

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/synadia-labs/rita/id"
)

func Example() {
	n := id.NUID.New()
	u := id.UUID.New()
	_, err := uuid.Parse(u)
	fmt.Println(len(n), len(u), err)
	// Output: 22 36 <nil>
}

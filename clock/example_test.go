package clock_test

import (
	"fmt"
	"time"

	"github.com/synadia-labs/rita/clock"
)

func ExampleFixed() {
	c := clock.Fixed(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	fmt.Println(c.Now().Format(time.RFC3339))
	// Output: 2024-01-02T03:04:05Z
}

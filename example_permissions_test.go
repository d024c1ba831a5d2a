package rita_test

import (
	"fmt"

	"github.com/synadia-labs/rita"
)

// The permissions of a service that reads the store "orders", as a block to
// paste into its user's entry in a nats-server configuration.
func ExamplePermissions() {
	p, err := rita.Permissions("orders", rita.RoleReader)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(p)
	// Output:
	// permissions: {
	//   publish: {
	//     allow: [
	//       "$JS.API.CONSUMER.CREATE.ES_orders.>"
	//       "$JS.API.CONSUMER.DELETE.ES_orders.>"
	//       "$JS.API.CONSUMER.MSG.NEXT.ES_orders.>"
	//       "$JS.API.DIRECT.GET.ES_orders"
	//       "$JS.API.DIRECT.GET.KV_rita-keys-orders.>"
	//       "$JS.API.DIRECT.GET.KV_rita-snapshots-orders.>"
	//       "$JS.API.INFO"
	//       "$JS.API.STREAM.CREATE.KV_rita-snapshots-orders"
	//       "$JS.API.STREAM.INFO.ES_orders"
	//       "$JS.API.STREAM.INFO.KV_rita-keys-orders"
	//       "$JS.API.STREAM.INFO.KV_rita-snapshots-orders"
	//       "$JS.API.STREAM.MSG.GET.ES_orders"
	//       "$KV.rita-snapshots-orders.>"
	//     ]
	//   }
	//   subscribe: {
	//     allow: [
	//       "_INBOX.>"
	//     ]
	//   }
	// }
}

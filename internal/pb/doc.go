// Package pb holds protocol buffer messages used by tests of the protobuf
// codec and the type registry. It is internal and not part of the API.
//
// events.pb.go is generated from events.proto and committed. To regenerate
// it, install the compiler and the Go plugin, then run go generate:
//
//	apt-get update && apt-get install -y protobuf-compiler
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go generate ./internal/pb
//
// The plugin is installed into $(go env GOPATH)/bin, which must be on PATH.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative events.proto

#!/bin/sh
# Regenerates transport/pb/*.pb.go from transport/pb/pastry.proto.
#
# Installs what it needs: protoc (Debian package protobuf-compiler) and
# protoc-gen-go at the version of google.golang.org/protobuf in go.mod, so
# the generated code matches the runtime library it is compiled against.
# Run from anywhere: tools/gen-proto.sh
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v protoc >/dev/null 2>&1; then
	echo "gen-proto: installing protoc (apt package protobuf-compiler)" >&2
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	$sudo apt-get update
	$sudo apt-get install -y protobuf-compiler
fi

version=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)
gobin=$(go env GOPATH)/bin
plugin="$gobin/protoc-gen-go"
have=""
[ -x "$plugin" ] && have=$("$plugin" --version 2>/dev/null | awk '{print $2}')
if [ "$have" != "$version" ]; then
	echo "gen-proto: installing protoc-gen-go $version" >&2
	go install "google.golang.org/protobuf/cmd/protoc-gen-go@$version"
fi

protoc --plugin=protoc-gen-go="$plugin" \
	--proto_path=transport/pb \
	--go_out=transport/pb --go_opt=paths=source_relative \
	transport/pb/pastry.proto
gofmt -l transport/pb
echo "gen-proto: wrote transport/pb/pastry.pb.go (protoc $(protoc --version | awk '{print $2}'), protoc-gen-go $version)" >&2

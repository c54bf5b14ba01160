// Package pb is the generated Go code for pastry.proto, the published wire
// schema of the Pastry protocol (package pastry.v1).
//
// The schema is the contract for other implementations. The transport's
// own codec (package transport) encodes and decodes the same bytes by hand
// with protowire, so that it can bound every count and length before it
// allocates and never builds intermediate structs on the forwarding path;
// its tests and fuzz targets check it against this generated code.
//
// Regenerate with tools/gen-proto.sh; do not edit pastry.pb.go.
package pb

// Package id implements Pastry's 128-bit identifiers.
//
// Node ids and keys share one type, [ID], a big-endian [16]byte value. An id
// is read as 128/b digits in base 2^b (b in {1, 2, 4, 8}; Pastry's default is
// b=4, i.e. 32 hexadecimal digits), most significant digit first. The id space
// is a ring of size 2^128: distances wrap around.
//
// Everything here is a pure function on values: no allocation on the hot
// paths, no big.Int. Arithmetic goes through [U128], two uint64 halves.
package id

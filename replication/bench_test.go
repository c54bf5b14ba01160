package replication

import (
	"fmt"
	"testing"
)

// Signing and verifying a record (Validate: shape, owner key, signature).
//
//	go test -run='^$' -bench='Sign|Validate' -benchtime=1s ./replication/
func BenchmarkSign(b *testing.B) {
	k := testKey(b, 1)
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			v := make([]byte, size)
			b.SetBytes(int64(size))
			for range b.N {
				if _, err := Sign(k, []byte("name"), v, 1, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	k := testKey(b, 1)
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			r := signed(b, k, "name", string(make([]byte, size)), 1, 0)
			b.SetBytes(int64(size))
			for range b.N {
				if err := r.Validate(now, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

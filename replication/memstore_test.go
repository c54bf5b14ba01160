package replication_test

import (
	"testing"

	"github.com/pastrynet/pastry/replication"
	"github.com/pastrynet/pastry/replication/storetest"
)

func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T, o replication.Options) replication.Store {
			s, err := replication.NewMemStore(o)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}

package replication

import (
	"container/list"

	"github.com/pastrynet/pastry/id"
)

// routeCache is the cache of records a node keeps from the reads routed
// through it (PAST's caching along routes): least recently used first out,
// bounded in bytes (the records' encodings). It holds records already
// validated; an immutable object is served to any read, a mutable record
// only to a read that accepts stale data (it carries its version, which
// may be older than the replicas'). Deterministic: no clock, no
// randomness.
type routeCache struct {
	capacity, used int64
	ll             *list.List // front: most recently used
	items          map[id.ID]*list.Element
}

type cacheItem struct {
	key  id.ID
	rec  *Record
	enc  []byte
	size int64
}

func newRouteCache(capacity int64) *routeCache {
	return &routeCache{capacity: capacity, ll: list.New(), items: map[id.ID]*list.Element{}}
}

// get returns the cached record at key (and marks it used), or nil.
func (c *routeCache) get(key id.ID) *cacheItem {
	el := c.items[key]
	if el == nil {
		return nil
	}
	c.ll.MoveToFront(el)
	return el.Value.(*cacheItem)
}

// put caches rec (encoded enc) at key, replacing an older version; a
// record larger than a quarter of the cache is not cached (it would evict
// too much for one object). It reports whether rec is cached.
func (c *routeCache) put(key id.ID, rec *Record, enc []byte) bool {
	size := int64(len(enc))
	if size > c.capacity/4 {
		return false
	}
	if el := c.items[key]; el != nil {
		old := el.Value.(*cacheItem)
		if replace, err := Supersedes(old.rec, rec); err != nil || !replace {
			c.ll.MoveToFront(el)
			return false
		}
		c.remove(el)
	}
	for c.used+size > c.capacity && c.ll.Len() > 0 {
		c.remove(c.ll.Back())
	}
	c.items[key] = c.ll.PushFront(&cacheItem{key: key, rec: rec, enc: enc, size: size})
	c.used += size
	return true
}

func (c *routeCache) remove(el *list.Element) {
	it := el.Value.(*cacheItem)
	c.ll.Remove(el)
	delete(c.items, it.key)
	c.used -= it.size
}

// drop removes key's copy, if cached.
func (c *routeCache) drop(key id.ID) {
	if el := c.items[key]; el != nil {
		c.remove(el)
	}
}

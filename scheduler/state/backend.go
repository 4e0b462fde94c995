package state

import (
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Backend is where a Store keeps its records: a set of buckets (apps,
// tasks, ...) of key -> JSON value. The Store holds everything in memory,
// reads a backend once (Load) and writes it in batches (Commit).
// Implementations: Bolt (one bbolt file) and scheduler/state/zkstore
// (ZooKeeper).
type Backend interface {
	// Load calls fn for every stored record, in any order.
	Load(fn func(bucket, key string, value []byte) error) error
	// Get returns one stored record (nil when there is none), as the last
	// successful Commit left it: a change the store refused is rolled back
	// to it.
	Get(bucket, key string) ([]byte, error)
	// Commit writes a batch of changes (a nil Value deletes the key). A
	// backend commits the batch atomically when it can; one that must
	// split it says so in its documentation.
	Commit(ops []Op) error
	// Close releases the backend.
	Close() error
}

// Op is one change of a Commit batch.
type Op struct {
	Bucket string
	Key    string
	// Value is the record's JSON; nil deletes the record.
	Value []byte
}

// Buckets lists the store's buckets.
func Buckets() []string {
	out := make([]string, len(allBuckets))
	for i, b := range allBuckets {
		out[i] = string(b)
	}
	return out
}

// Bolt is the bbolt backend: one file, one transaction per Commit.
type Bolt struct {
	db *bolt.DB
}

// OpenBolt opens (or creates) the bbolt file at path.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Bolt{db: db}, nil
}

// Load implements Backend.
func (b *Bolt) Load(fn func(bucket, key string, value []byte) error) error {
	return b.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				return fn(string(name), string(k), v)
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Commit implements Backend: the batch is one transaction.
func (b *Bolt) Commit(ops []Op) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		for _, op := range ops {
			bk := tx.Bucket([]byte(op.Bucket))
			if bk == nil {
				return fmt.Errorf("write %s/%s: no such bucket", op.Bucket, op.Key)
			}
			var err error
			if op.Value == nil {
				err = bk.Delete([]byte(op.Key))
			} else {
				err = bk.Put([]byte(op.Key), op.Value)
			}
			if err != nil {
				return fmt.Errorf("write %s/%s: %w", op.Bucket, op.Key, err)
			}
		}
		return nil
	})
}

// Close implements Backend.
// Get implements Backend.
func (b *Bolt) Get(bucket, key string) ([]byte, error) {
	var out []byte
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(bucket))
		if bk == nil {
			return nil
		}
		if v := bk.Get([]byte(key)); v != nil {
			out = slices.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bbolt get %s/%s: %w", bucket, key, err)
	}
	return out, nil
}

func (b *Bolt) Close() error { return b.db.Close() }

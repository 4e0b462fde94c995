package state

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/switchyard/switchyard/marathon"
)

// GroupVersion is the group tree at one version: the stored groups and
// the definition version of every app. The definitions themselves are
// kept once per app version for all group versions (bucket groupdefs).
type GroupVersion struct {
	Version string               `json:"version"`
	Groups  []marathon.GroupMeta `json:"groups"`
	Apps    map[string]string    `json:"apps"`
}

var (
	bucketGroups        = []byte("groups")
	bucketGroupVersions = []byte("groupversions")
	bucketGroupDefs     = []byte("groupdefs")
)

// groupStore is the part of Store that keeps groups and group versions.
// Its maps are guarded by Store.mu.
type groupStore struct {
	groups    map[string]*marathon.GroupMeta
	gversions map[string]*GroupVersion
	gdefs     map[string]*marathon.App // app id \x00 version -> definition
}

func newGroupStore() groupStore {
	return groupStore{
		groups:    map[string]*marathon.GroupMeta{},
		gversions: map[string]*GroupVersion{},
		gdefs:     map[string]*marathon.App{},
	}
}

// loadGroupRecord loads a record of the group buckets; records of buckets
// this version does not know are ignored.
func (s *Store) loadGroupRecord(bucket, k string, v []byte) error {
	switch bucket {
	case string(bucketGroups):
		var g marathon.GroupMeta
		if err := json.Unmarshal(v, &g); err != nil {
			return fmt.Errorf("group %s: %w", k, err)
		}
		s.groups[k] = &g
	case string(bucketGroupVersions):
		var g GroupVersion
		if err := json.Unmarshal(v, &g); err != nil {
			return fmt.Errorf("group version %s: %w", k, err)
		}
		s.gversions[k] = &g
	case string(bucketGroupDefs):
		var d marathon.App
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("group app version %s: %w", k, err)
		}
		s.gdefs[k] = &d
	}
	return nil
}

// restoreGroupRecord sets one record of the group buckets back to v (nil:
// absent), for Store.Rollback. Caller holds s.mu.
func (s *Store) restoreGroupRecord(bucket, k string, v []byte) error {
	if v == nil {
		switch bucket {
		case string(bucketGroups):
			delete(s.groups, k)
		case string(bucketGroupVersions):
			delete(s.gversions, k)
		case string(bucketGroupDefs):
			delete(s.gdefs, k)
		}
		return nil
	}
	if err := s.loadGroupRecord(bucket, k, v); err != nil {
		return fmt.Errorf("roll back %s/%s: %w", bucket, k, err)
	}
	return nil
}

// Groups returns the stored groups sorted by id.
func (s *Store) Groups() []marathon.GroupMeta {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]marathon.GroupMeta, 0, len(s.groups))
	for _, g := range s.groups {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Group returns a stored group.
func (s *Store) Group(id string) (marathon.GroupMeta, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, ok := s.groups[id]
	if !ok {
		return marathon.GroupMeta{}, false
	}
	return *g, true
}

// PutGroup stores a group.
func (s *Store) PutGroup(g marathon.GroupMeta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[g.ID] = &g
	s.mark(bucketGroups, g.ID, &g)
}

// DeleteGroup removes a stored group.
func (s *Store) DeleteGroup(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, id)
	s.mark(bucketGroups, id, nil)
}

// AddGroupVersion stores the group tree at v.Version: v and the app
// definitions it names (defs, one per entry of v.Apps). Only the newest
// group versions are kept, as many as SetMaxVersions allows.
func (s *Store) AddGroupVersion(v GroupVersion, defs []marathon.App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range defs {
		key := defs[i].ID + "\x00" + defs[i].Version
		if _, ok := s.gdefs[key]; ok {
			continue
		}
		d := defs[i]
		s.gdefs[key] = &d
		s.mark(bucketGroupDefs, key, &d)
	}
	s.gversions[v.Version] = &v
	s.mark(bucketGroupVersions, v.Version, &v)
	limit := s.versionLimit()
	if len(s.gversions) <= limit {
		return
	}
	versions := s.groupVersionsLocked()
	for _, old := range versions[:len(versions)-limit] {
		delete(s.gversions, old)
		s.mark(bucketGroupVersions, old, nil)
	}
	// Drop the definitions no kept version names.
	used := map[string]bool{}
	for _, gv := range s.gversions {
		for id, ver := range gv.Apps {
			used[id+"\x00"+ver] = true
		}
	}
	for key := range s.gdefs {
		if !used[key] {
			delete(s.gdefs, key)
			s.mark(bucketGroupDefs, key, nil)
		}
	}
}

func (s *Store) groupVersionsLocked() []string {
	out := make([]string, 0, len(s.gversions))
	for v := range s.gversions {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// GroupVersions lists the stored group versions, oldest first.
func (s *Store) GroupVersions() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.groupVersionsLocked()
}

// GroupVersion returns the group tree at version with its app
// definitions sorted by id.
func (s *Store) GroupVersion(version string) (GroupVersion, []marathon.App, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gv, ok := s.gversions[version]
	if !ok {
		return GroupVersion{}, nil, false
	}
	apps := make([]marathon.App, 0, len(gv.Apps))
	for id, ver := range gv.Apps {
		if d, ok := s.gdefs[id+"\x00"+ver]; ok {
			apps = append(apps, *d)
		}
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].ID < apps[j].ID })
	return *gv, apps, true
}

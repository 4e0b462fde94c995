package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveDataDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	home := func() (string, error) { return "/home/u", nil }
	noHome := func() (string, error) { return "", errors.New("no home") }
	tests := []struct {
		name     string
		flag     string
		inMemory bool
		euid     int
		env      map[string]string
		home     func() (string, error)
		want     string
		err      string
	}{
		{name: "root default", euid: 0, home: home, want: "/var/lib/switchyard"},
		{name: "user default", euid: 1000, home: home, want: "/home/u/.local/state/switchyard"},
		{name: "user XDG", euid: 1000, env: map[string]string{"XDG_STATE_HOME": "/x/state"}, home: home, want: "/x/state/switchyard"},
		{name: "relative XDG ignored", euid: 1000, env: map[string]string{"XDG_STATE_HOME": "rel"}, home: home, want: "/home/u/.local/state/switchyard"},
		{name: "flag wins", flag: "/d", euid: 1000, home: noHome, want: "/d"},
		{name: "in memory", inMemory: true, home: home, want: ""},
		{name: "both", flag: "/d", inMemory: true, home: home, err: "exclude"},
		{name: "no home", euid: 1000, home: noHome, err: "--in-memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveDataDir(tt.flag, tt.inMemory, tt.euid, env(tt.env), tt.home)
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

package main

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckAPIAddress(t *testing.T) {
	tests := []struct {
		addr     string
		insecure bool
		ok       bool
		log      string
	}{
		{"127.0.0.1:8080", false, true, ""},
		{"[::1]:8080", false, true, ""},
		{"localhost:0", false, true, ""},
		{":8080", false, false, "refusing to start"},
		{"0.0.0.0:8080", false, false, "refusing to start"},
		{"10.1.2.3:8080", true, true, "--insecure-no-auth"},
		{"nonsense", false, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			var logs bytes.Buffer
			err := checkAPIAddress(tc.addr, tc.insecure, slog.New(slog.NewTextHandler(&logs, nil)))
			assert.Equal(t, tc.ok, err == nil, err)
			assert.Contains(t, logs.String(), tc.log)
		})
	}
}

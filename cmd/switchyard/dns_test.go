package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDemoDNSFlags(t *testing.T) {
	err := newApp().Run([]string{"switchyard", "--dns-addr", "127.0.0.1:0", "--dns-ttl", "0"})
	assert.ErrorContains(t, err, "--dns-ttl")
	err = newApp().Run([]string{"switchyard", "--dns-timeout", "-1s"})
	assert.ErrorContains(t, err, "--dns-timeout")
}

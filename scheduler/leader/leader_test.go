package leader_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/leader"
	"github.com/switchyard/switchyard/scheduler/zk"
	"github.com/switchyard/switchyard/scheduler/zk/zktest"
)

type candidate struct {
	addr string
	el   *leader.Elector
	mu   sync.Mutex
	term *leader.Term
}

func (c *candidate) current() *leader.Term {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.term != nil && c.term.Context().Err() == nil {
		return c.term
	}
	return nil
}

// start runs n candidates; each campaigns again after its term ends.
func start(t *testing.T, ens *zktest.Ensemble, n int, timeout time.Duration) []*candidate {
	u, err := zk.ParseURL(ens.URL("/sy"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var out []*candidate
	for i := range n {
		c := &candidate{addr: fmt.Sprintf("m%d:8080", i)}
		c.el, err = leader.New(leader.Config{URL: u, SessionTimeout: timeout, Advertise: c.addr})
		require.NoError(t, err)
		t.Cleanup(c.el.Close)
		wg.Add(2)
		go func() { defer wg.Done(); _ = c.el.Run(ctx) }()
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				term, err := c.el.Campaign(ctx)
				if err != nil {
					return
				}
				c.mu.Lock()
				c.term = term
				c.mu.Unlock()
				select {
				case <-term.Context().Done():
				case <-ctx.Done():
				}
				term.Resign()
			}
		}()
		out = append(out, c)
	}
	return out
}

// leaders waits until exactly one candidate leads and every candidate
// names it, and returns it.
func oneLeader(t *testing.T, cs []*candidate) *candidate {
	t.Helper()
	var lead *candidate
	require.Eventually(t, func() bool {
		lead = nil
		n := 0
		for _, c := range cs {
			if c.current() != nil {
				lead = c
				n++
			}
		}
		if n != 1 {
			return false
		}
		for _, c := range cs {
			if a, err := c.el.Leader(); err != nil || a != lead.addr {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond)
	return lead
}

func TestElection(t *testing.T) {
	ens := zktest.Start(t, 3)
	cs := start(t, ens, 3, 4*time.Second)
	first := oneLeader(t, cs)
	term := first.current()
	require.NotNil(t, term)
	assert.True(t, term.Valid())

	// Resigning (DELETE /v2/leader) hands leadership to another.
	term.Resign()
	assert.False(t, term.Valid(), "a resigned term is over at once")
	second := oneLeader(t, cs)
	assert.NotEqual(t, first.addr, second.addr)

	// A leader whose session ends is replaced.
	second.el.Close()
	var rest []*candidate
	for _, c := range cs {
		if c != second {
			rest = append(rest, c)
		}
	}
	third := oneLeader(t, rest)
	assert.NotEqual(t, second.addr, third.addr)
}

func TestZooKeeperNodeLoss(t *testing.T) {
	ens := zktest.Start(t, 3)
	cs := start(t, ens, 2, 4*time.Second)
	lead := oneLeader(t, cs)
	term := lead.current()

	// Lose the ZooKeeper server the leader talks to: its client moves to
	// another server within the session, and nothing changes.
	server := lead.el.Conn().Server()
	var idx int
	for i, s := range ens.Servers() {
		if s == server {
			idx = i
		}
	}
	ens.Kill(idx)
	require.Eventually(t, func() bool {
		return lead.el.Conn().State() == gozk.StateHasSession && lead.el.Conn().Server() != server
	}, 20*time.Second, 20*time.Millisecond)
	// A renewal after the reconnect keeps the term.
	_, _, err := lead.el.Conn().Exists(term.Node())
	require.NoError(t, err)
	assert.NoError(t, term.Context().Err(), "losing one ZooKeeper node of three changes nothing")
	assert.Equal(t, lead, oneLeader(t, cs))

	// Lose a second: no quorum, no leader.
	for i := range 3 {
		if i != idx {
			ens.Kill(i)
			break
		}
	}
	<-term.Context().Done()
	require.Eventually(t, func() bool {
		for _, c := range cs {
			if c.current() != nil {
				return false
			}
			if _, err := c.el.Leader(); err == nil {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond)
	_, err = cs[0].el.Leader()
	assert.ErrorIs(t, err, leader.ErrNoLeader)
}

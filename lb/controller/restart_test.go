package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/lb"
)

// After HAProxy was started again from the file at the config path, the
// applier brings it from what it loaded to the current configuration:
// through the runtime API when runtime updates were not in the file yet,
// not at all when the file was current, by a reload when what it loaded
// is unknown.
func TestApplyAfterHAProxyRestart(t *testing.T) {
	tests := []struct {
		name    string
		loaded  string // "first", "current" or "unknown"
		want    []string
		wantAct string
	}{
		{name: "file current: nothing to do", loaded: "current", wantAct: actionNone},
		{name: "runtime update not in the file: applied again", loaded: "first", want: []string{"apply"}, wantAct: actionRuntime},
		{name: "unknown: reload", loaded: "unknown", want: []string{"reload: "}, wantAct: actionReload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			f := newApplierFixture(t, lb.Options{})
			first := f.render(t, webApp(31000))
			require.NoError(t, f.a.start(ctx, first))
			cur := f.render(t, webApp(31000, 31001))
			res, err := f.a.apply(ctx, cur, "")
			require.NoError(t, err)
			require.Equal(t, actionRuntime, res.action)
			f.proc.taken()

			switch tc.loaded {
			case "first":
				f.a.restarted(first.Config)
			case "current":
				f.a.restarted(cur.Config)
			default:
				f.a.restarted(nil)
			}
			res, err = f.a.apply(ctx, cur, "")
			require.NoError(t, err)
			assert.Equal(t, tc.wantAct, res.action)
			calls := f.proc.taken()
			if tc.wantAct == actionReload && assert.Len(t, calls, 1) {
				assert.Contains(t, calls[0], tc.want[0], "calls to HAProxy")
			} else {
				assert.Equal(t, tc.want, calls, "calls to HAProxy")
			}
			assert.Equal(t, cur.Config, f.a.running().Config)
		})
	}
}

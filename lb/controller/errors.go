package controller

import (
	"errors"
	"fmt"
	"time"
)

// ErrValidation is wrapped by errors about a configuration that HAProxy
// rejected (haproxy -c). Such a configuration is never applied.
var ErrValidation = errors.New("configuration failed validation")

// ErrHAProxyExited is returned by Run when HAProxy is gone for good
// without Stop (a master that exits on its own is restarted instead).
var ErrHAProxyExited = errors.New("haproxy exited")

// tooSoonError asks the loop to retry an apply after wait, because the
// last reload happened less than --reload-interval ago.
type tooSoonError struct {
	wait time.Duration
}

func (e *tooSoonError) Error() string {
	return fmt.Sprintf("reload deferred by %s (reload interval)", e.wait.Round(time.Millisecond))
}

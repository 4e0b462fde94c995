package controller

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSettle is how long file events must be quiet before they count:
// editors and cert tools write a file in several steps.
const watchSettle = 50 * time.Millisecond

// watch starts watching the templates directory and the directories of the
// watched files (certificates) until ctx ends. Changes are reported on
// c.templatesChanged and c.certsChanged.
func (c *Controller) watch(ctx context.Context) error {
	if c.cfg.TemplatesDir == "" && len(c.cfg.WatchFiles) == 0 {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("file watcher: %w", err)
	}
	tdir := ""
	if c.cfg.TemplatesDir != "" {
		tdir = filepath.Clean(c.cfg.TemplatesDir)
		if err := w.Add(tdir); err != nil {
			_ = w.Close()
			return fmt.Errorf("watch templates directory %s: %w", tdir, err)
		}
	}
	certs := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range c.cfg.WatchFiles {
		f = filepath.Clean(f)
		certs[f] = true
		d := filepath.Dir(f)
		if dirs[d] || d == tdir {
			continue
		}
		dirs[d] = true
		if err := w.Add(d); err != nil {
			c.log.Warn("cannot watch certificate directory", "dir", d, "err", err)
		}
	}
	go c.watchLoop(ctx, w, tdir, certs)
	return nil
}

func (c *Controller) watchLoop(ctx context.Context, w *fsnotify.Watcher, tdir string, certs map[string]bool) {
	defer func() { _ = w.Close() }()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	var tmpl, cert bool
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			c.log.Warn("file watcher", "err", err)
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			name := filepath.Clean(ev.Name)
			switch {
			case certs[name]:
				cert = true
			case tdir != "" && filepath.Dir(name) == tdir:
				tmpl = true
			default:
				continue
			}
			settle.Reset(watchSettle)
		case <-settle.C:
			if tmpl {
				notify(c.templatesChanged)
			}
			if cert {
				notify(c.certsChanged)
			}
			tmpl, cert = false, false
		}
	}
}

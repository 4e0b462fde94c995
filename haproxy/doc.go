// Package haproxy runs HAProxy as a program and applies configuration
// changes to it with zero dropped connections.
//
// The pieces, in the order a controller uses them:
//
//   - [Check] validates a rendered configuration with `haproxy -c`;
//     [Parse] reads it (with github.com/haproxytech/config-parser);
//   - [Diff] compares the running configuration with the new one and says
//     whether the change can be applied through the runtime API (servers
//     added, removed, moved or re-weighted) or needs a reload, and why;
//   - [WriteFileAtomic] puts the new file in place;
//   - [Process] supervises HAProxy in master-worker mode: [Process.Apply]
//     performs runtime operations on the current worker through the master
//     CLI, [Process.Reload] does a seamless reload (the new worker inherits
//     the listening sockets, the old one finishes its connections).
//     It runs HAProxy in the foreground whatever the file says (-db, so
//     "daemon" is ignored), restarts a master that exits on its own, and
//     at Start takes over a master a previous lb left running for the
//     same configuration instead of starting a second one.
//
// It knows nothing of Marathon; it talks to HAProxy through package
// runtimeapi. Tested against HAProxy 2.6.
package haproxy

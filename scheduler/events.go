package scheduler

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// bus fans events out to /v2/events subscribers. Every subscriber has a
// bounded queue; a subscriber whose queue is full is dropped (its channel
// closed) so the publisher never blocks.
type bus struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	buffer  int
	dropped func()
	// holding (under mu) makes publish queue events in held until
	// release: a change's events wait until the change is stored.
	holding bool
	held    []heldEvent
}

type heldEvent struct {
	eventType string
	payload   any
}

// hold queues every event published from now on until release.
func (b *bus) hold() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holding, b.held = true, nil
}

// release ends hold and publishes the queued events, or drops them when
// send is false (the change they describe was rolled back).
func (b *bus) release(send bool) {
	b.mu.Lock()
	held := b.held
	b.holding, b.held = false, nil
	b.mu.Unlock()
	if !send {
		return
	}
	for _, e := range held {
		b.send(e.eventType, e.payload)
	}
}

type subscriber struct {
	ch     chan marathon.Event
	remote string
	closed bool
}

func newBus(buffer int, dropped func()) *bus {
	return &bus{subs: map[*subscriber]struct{}{}, buffer: buffer, dropped: dropped}
}

// subscribe registers a subscriber and publishes event_stream_attached,
// which the new subscriber receives first.
func (b *bus) subscribe(remote string) (<-chan marathon.Event, func()) {
	s := &subscriber{ch: make(chan marathon.Event, b.buffer), remote: remote}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	b.send(marathon.EventStreamAttached, &marathon.StreamAttachedEvent{RemoteAddress: remote})
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			if _, ok := b.subs[s]; ok {
				delete(b.subs, s)
				s.closed = true
				close(s.ch)
			}
			b.mu.Unlock()
			b.send(marathon.EventStreamDetached, &marathon.StreamAttachedEvent{RemoteAddress: remote})
		})
	}
}

// subscribeQuiet registers a subscriber without announcing it (for the
// HTTP callback deliverers, which are not event streams).
func (b *bus) subscribeQuiet() (<-chan marathon.Event, func()) {
	s := &subscriber{ch: make(chan marathon.Event, b.buffer), remote: "callback"}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s.ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[s]; ok {
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

// header is implemented by event payloads that embed marathon.EventHeader.
type header interface{ setHeader(marathon.EventHeader) }

// publish sends an event to every subscriber, or queues it while the bus
// holds events (see hold).
func (b *bus) publish(eventType string, payload any) {
	b.mu.Lock()
	if b.holding {
		b.held = append(b.held, heldEvent{eventType, payload})
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.send(eventType, payload)
}

// send stamps the payload with its type and time, encodes it once and
// queues it for every subscriber.
func (b *bus) send(eventType string, payload any) {
	ts := timestamp(time.Now())
	h := marathon.EventHeader{EventType: eventType, Timestamp: ts}
	switch p := payload.(type) {
	case *marathon.StreamAttachedEvent:
		p.EventHeader = h
	case *marathon.APIPostEvent:
		p.EventHeader = h
	case *marathon.StatusUpdateEvent:
		p.EventHeader = h
	case *marathon.HealthStatusChangedEvent:
		p.EventHeader = h
	case *marathon.FailedHealthCheckEvent:
		p.EventHeader = h
	case *marathon.UnhealthyInstanceKillEvent:
		p.EventHeader = h
	case *marathon.AppTerminatedEvent:
		p.EventHeader = h
	case *marathon.DeploymentEvent:
		p.EventHeader = h
	case *marathon.GroupChangeEvent:
		p.EventHeader = h
	case header:
		p.setHeader(h)
	}
	if b.count() == 0 {
		return
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return
	}
	ev := marathon.Event{Type: eventType, Timestamp: ts, Data: data}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- ev:
		default:
			delete(b.subs, s)
			s.closed = true
			close(s.ch)
			if b.dropped != nil {
				b.dropped()
			}
		}
	}
}

func (b *bus) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// apiPostEvent is api_post_event. Its appDefinition is the plain App (spec
// §3.2): the read-only AppInfo additions are left out.
type apiPostEvent struct {
	marathon.EventHeader
	ClientIP      string   `json:"clientIp"`
	URI           string   `json:"uri"`
	AppDefinition plainApp `json:"appDefinition"`
}

func (e *apiPostEvent) setHeader(h marathon.EventHeader) { e.EventHeader = h }

// plainApp encodes an App without the AppInfo additions: each of them is
// shadowed by a shallower field of the same JSON name (encoding/json
// prefers the least nested one) that is never set and omitted when empty.
type plainApp struct {
	marathon.App
	TasksStaged     *struct{} `json:"tasksStaged,omitempty"`
	TasksRunning    *struct{} `json:"tasksRunning,omitempty"`
	TasksHealthy    *struct{} `json:"tasksHealthy,omitempty"`
	TasksUnhealthy  *struct{} `json:"tasksUnhealthy,omitempty"`
	Deployments     *struct{} `json:"deployments,omitempty"`
	Tasks           *struct{} `json:"tasks,omitempty"`
	LastTaskFailure *struct{} `json:"lastTaskFailure,omitempty"`
}

// eventUnknownInstanceTerminated is the type of
// unknownInstanceTerminatedEvent.
const eventUnknownInstanceTerminated = "unknown_instance_terminated_event"

// unknownInstanceTerminatedEvent is unknown_instance_terminated_event: an
// agent reported a terminal state for a task the scheduler does not know.
type unknownInstanceTerminatedEvent struct {
	marathon.EventHeader
	InstanceID string `json:"instanceId"`
	RunSpecID  string `json:"runSpecId"`
	Condition  string `json:"condition"`
}

func (e *unknownInstanceTerminatedEvent) setHeader(h marathon.EventHeader) { e.EventHeader = h }

// runSpecID is the canonical form of an app id an agent reported ("" when
// it reported none).
func runSpecID(appID string) string {
	if appID == "" {
		return ""
	}
	return marathon.CanonicalID(appID)
}

// instanceChangedEvent is instance_changed_event (Marathon 1.4+).
type instanceChangedEvent struct {
	marathon.EventHeader
	InstanceID     string `json:"instanceId"`
	Condition      string `json:"condition"`
	RunSpecID      string `json:"runSpecId"`
	AgentID        string `json:"agentId"`
	Host           string `json:"host"`
	RunSpecVersion string `json:"runSpecVersion"`
}

func (e *instanceChangedEvent) setHeader(h marathon.EventHeader) { e.EventHeader = h }

// instanceHealthChangedEvent is instance_health_changed_event.
type instanceHealthChangedEvent struct {
	marathon.EventHeader
	InstanceID     string `json:"instanceId"`
	RunSpecID      string `json:"runSpecId"`
	RunSpecVersion string `json:"runSpecVersion"`
	Healthy        *bool  `json:"healthy"`
}

func (e *instanceHealthChangedEvent) setHeader(h marathon.EventHeader) { e.EventHeader = h }

// timestamp formats t as Marathon does: ISO-8601 UTC with milliseconds.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// condition maps a task state to Marathon's instance condition name.
func condition(state string) string {
	switch state {
	case marathon.TaskStaging:
		return "Staging"
	case marathon.TaskStarting:
		return "Starting"
	case marathon.TaskRunning:
		return "Running"
	case marathon.TaskKilling:
		return "Killing"
	case marathon.TaskFinished:
		return "Finished"
	case marathon.TaskFailed:
		return "Failed"
	case marathon.TaskKilled:
		return "Killed"
	case marathon.TaskError:
		return "Error"
	case marathon.TaskDropped:
		return "Dropped"
	case marathon.TaskUnreachable:
		return "Unreachable"
	case marathon.TaskGone:
		return "Gone"
	case marathon.TaskLost:
		return "Gone"
	}
	return "Unknown"
}

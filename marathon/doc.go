// Package marathon is the Marathon v2 wire contract shared by both sides of
// Switchyard: the app, task, health-check and deployment JSON types, the
// event types of /v2/events, and a client for the REST API and the event
// stream. It imports none of Switchyard's other packages.
package marathon

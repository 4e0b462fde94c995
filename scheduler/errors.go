package scheduler

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/switchyard/switchyard/marathon"
)

// APIError is an error with the HTTP status and Marathon error body the
// API answers with (it satisfies httpapi.StatusError).
type APIError struct {
	Status int
	Body   marathon.ErrorResponse
}

// Error implements error.
func (e *APIError) Error() string { return e.Body.Message }

// HTTPStatus is the status code to answer with.
func (e *APIError) HTTPStatus() int { return e.Status }

// ErrorResponse is the body to answer with.
func (e *APIError) ErrorResponse() marathon.ErrorResponse { return e.Body }

// ErrNotFound is matched (errors.Is) by every 404 APIError.
var ErrNotFound = errors.New("not found")

// Is lets errors.Is(err, ErrNotFound) match 404 errors.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

func appNotFound(id string) error {
	return &APIError{Status: http.StatusNotFound, Body: marathon.ErrorResponse{Message: fmt.Sprintf("App '%s' does not exist", id)}}
}

func taskNotFound(id string) error {
	return &APIError{Status: http.StatusNotFound, Body: marathon.ErrorResponse{Message: fmt.Sprintf("Task '%s' does not exist", id)}}
}

func duplicateApp(id string) error {
	return &APIError{Status: http.StatusConflict, Body: marathon.ErrorResponse{Message: fmt.Sprintf("An app with id [%s] already exists.", id)}}
}

func locked(ids []string) error {
	refs := make([]marathon.DeploymentRef, 0, len(ids))
	for _, id := range ids {
		refs = append(refs, marathon.DeploymentRef{ID: id})
	}
	first := ""
	if len(ids) > 0 {
		first = ids[0]
	}
	return &APIError{Status: http.StatusConflict, Body: marathon.ErrorResponse{
		Message:     fmt.Sprintf("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/%s'.", first),
		Deployments: refs,
	}}
}

func invalid(path, msg string) error {
	return &APIError{Status: http.StatusUnprocessableEntity, Body: marathon.ErrorResponse{
		Message: "Object is not valid",
		Details: []marathon.ErrorDetail{{Path: path, Errors: []string{msg}}},
	}}
}

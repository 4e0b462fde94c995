module github.com/switchyard/switchyard/testdata/compat

go 1.26.0

require (
	github.com/gambol99/go-marathon v0.7.1
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/donovanhide/eventsource v0.0.0-20210830082556-c59027999da0 // indirect
	github.com/google/go-querystring v1.2.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	gopkg.in/yaml.v2 v2.4.0 // indirect
)

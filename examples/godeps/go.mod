module example.com/godeps

go 1.26

require (
	github.com/google/uuid v1.6.0
	github.com/pkg/errors v0.9.1
)

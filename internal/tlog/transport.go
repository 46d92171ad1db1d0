package tlog

import (
	"github.com/buildguard/buildguard/internal/httplimit"
)

// ErrTooLarge is a response over MaxResponse.
var ErrTooLarge = httplimit.ErrTooLarge

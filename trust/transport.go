package trust

import (
	"net/http"

	"github.com/buildguard/buildguard/internal/httplimit"
)

// errTooLarge is a registry response or blob over its limit.
var errTooLarge = httplimit.ErrTooLarge

// limitTransport bounds every response body read from a registry, so that
// no registry can make the verifier read without end.
func limitTransport(rt http.RoundTripper, limit int64) http.RoundTripper {
	return &httplimit.Transport{RT: rt, Max: limit}
}

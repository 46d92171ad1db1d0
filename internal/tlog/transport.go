package tlog

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrTooLarge is a response over MaxResponse.
var ErrTooLarge = errors.New("response larger than the limit")

// limitTransport bounds every response body, so that no log can make a
// reader read without end.
type limitTransport struct {
	rt  http.RoundTripper
	max int64
}

// RoundTrip implements http.RoundTripper.
func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := t.rt
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %d bytes: %w of %d", req.Method, req.URL.Redacted(), resp.ContentLength, ErrTooLarge, t.max)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max, what: req.URL.Redacted()}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
	what string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%s: %w", b.what, ErrTooLarge)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// Package httplimit bounds what an HTTP client reads: a transport that
// refuses a response whose declared length is over a limit and stops any
// body that goes on past it, so that no server can make a reader read
// without end.
package httplimit

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrTooLarge is a response over its limit.
var ErrTooLarge = errors.New("response larger than the limit")

// Transport bounds each response of RT (nil: http.DefaultTransport) to Max
// bytes.
type Transport struct {
	RT  http.RoundTripper
	Max int64
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := t.RT
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.Max {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%s %s: response of %d bytes: %w of %d", req.Method, req.URL.Redacted(), resp.ContentLength, ErrTooLarge, t.Max)
	}
	resp.Body = &body{rc: resp.Body, left: t.Max, what: req.URL.Redacted()}
	return resp, nil
}

type body struct {
	rc   io.ReadCloser
	left int64
	what string
}

func (b *body) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("response from %s: %w", b.what, ErrTooLarge)
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

func (b *body) Close() error { return b.rc.Close() }

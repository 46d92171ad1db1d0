package deps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/buildguard/buildguard/internal/httplimit"
)

// fetcher makes the requests: every response bounded to max bytes by
// httplimit, every request (headers and body) bounded by timeout, and
// each one counted for Result.Fetched.
type fetcher struct {
	client   *http.Client
	max      int64
	timeout  time.Duration
	requests atomic.Int64
}

// newFetcher wraps the caller's client (or a client over
// http.DefaultTransport) in the byte bound. The caller's client is copied,
// never changed.
func newFetcher(o Options) *fetcher {
	c := &http.Client{}
	if o.Client != nil {
		cc := *o.Client
		c = &cc
	}
	c.Transport = &httplimit.Transport{RT: c.Transport, Max: o.MaxBytes}
	return &fetcher{client: c, max: o.MaxBytes, timeout: o.Timeout}
}

// statusError is a response other than 200 OK.
type statusError struct{ code int }

func (e *statusError) Error() string {
	return fmt.Sprintf("%d %s", e.code, http.StatusText(e.code))
}

// notFound reports whether err says the server does not have the thing
// (404 or 410): the only answers on which a "," GOPROXY list falls through.
func notFound(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.code == http.StatusNotFound || se.code == http.StatusGone)
}

// download fetches url into a new file of dir and returns its path; the
// caller removes it. Nothing is trusted yet: the caller verifies it.
func (f *fetcher) download(ctx context.Context, url, dir string) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return "", &FetchError{URL: url, Err: err}
	}
	f.requests.Add(1)
	resp, err := f.client.Do(req)
	if err != nil {
		return "", f.fail(ctx, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", &FetchError{URL: url, Err: &statusError{code: resp.StatusCode}}
	}
	tmp, err := os.CreateTemp(dir, "download-*")
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	_, err = io.Copy(tmp, resp.Body)
	if err != nil {
		err = f.fail(ctx, url, err)
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("downloading %s: %w", url, cerr)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// fail classifies a transport error: over the byte bound is a
// *LimitError, the caller's own cancellation is returned as it is, and
// anything else (refused, reset, timed out) is a *FetchError.
func (f *fetcher) fail(ctx context.Context, url string, err error) error {
	if errors.Is(err, httplimit.ErrTooLarge) {
		return &LimitError{Limit: "dependencyBytes", Flag: "--max-dependency-bytes", Max: f.max, What: "downloading " + url}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("downloading %s: %w", url, ctx.Err())
	}
	return &FetchError{URL: url, Err: err}
}

// readBounded reads r to its end, refusing more than max bytes.
func readBounded(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return data, nil
}

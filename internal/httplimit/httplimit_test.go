package httplimit

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length: the body must be cut while read
		}
		_, _ = io.WriteString(w, strings.Repeat("x", 100))
	}))
	defer srv.Close()
	c := &http.Client{Transport: &Transport{Max: 50}}
	if resp, err := c.Get(srv.URL + "/declared"); !errors.Is(err, ErrTooLarge) {
		if err == nil {
			resp.Body.Close()
		}
		t.Errorf("declared length over the limit: %v", err)
	}
	resp, err := c.Get(srv.URL + "/chunked")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, ErrTooLarge) {
		t.Errorf("streamed body over the limit: %v", err)
	}
	ok := &http.Client{Transport: &Transport{Max: 100}}
	resp, err = ok.Get(srv.URL + "/chunked")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != 100 {
		t.Errorf("a body at the limit: %d bytes, %v", len(b), err)
	}
}

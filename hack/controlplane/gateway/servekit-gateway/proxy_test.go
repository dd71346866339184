package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A refused connection is sent to the backend's next endpoint with its body whole.
func TestRefusedConnectionGoesToTheNextEndpoint(t *testing.T) {
	var got string
	alive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = string(body)
		io.WriteString(w, "answered")
	}))
	defer alive.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close() // nothing listens there now: connecting is refused

	p := newProxy()
	request := httptest.NewRequest(http.MethodPost, "http://model.example.com/v2/models/iris/infer", strings.NewReader(`{"inputs": []}`))
	if err := keepBody(request); err != nil {
		t.Fatal(err)
	}
	target := chosen{endpoint: refused, others: []string{strings.TrimPrefix(alive.URL, "http://")}}
	recorder := httptest.NewRecorder()
	p.forward.ServeHTTP(recorder, request.WithContext(context.WithValue(request.Context(), chosenKey{}, target)))

	if recorder.Code != http.StatusOK || recorder.Body.String() != "answered" {
		t.Fatalf("got %d %q, want 200 from the live endpoint", recorder.Code, recorder.Body.String())
	}
	if got != `{"inputs": []}` {
		t.Fatalf("the live endpoint got body %q", got)
	}
}

// With no endpoint left, the refusal is the client's 502.
func TestRefusedEverywhereIsABadGateway(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	p := newProxy()
	request := httptest.NewRequest(http.MethodGet, "http://model.example.com/v2/health/ready", nil)
	recorder := httptest.NewRecorder()
	p.forward.ServeHTTP(recorder, request.WithContext(context.WithValue(request.Context(), chosenKey{}, chosen{endpoint: refused})))
	if recorder.Code != http.StatusBadGateway {
		t.Fatalf("got %d, want 502", recorder.Code)
	}
}

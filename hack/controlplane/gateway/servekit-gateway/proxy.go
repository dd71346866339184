package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http2"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// proxy forwards each request to one endpoint of the backend its route picks.
type proxy struct {
	table   atomic.Pointer[table]
	http1   http.RoundTripper
	h2c     http.RoundTripper
	forward *httputil.ReverseProxy
}

type chosenKey struct{}

type chosen struct {
	endpoint string
	h2c      bool
	// The backend's other ready endpoints, in random order: a request whose connection was
	// refused never reached its endpoint, so it is sent to the next one (a pod that just died,
	// before its endpoint left the EndpointSlice).
	others []string
}

// Bodies up to this size are kept in memory so a request can be sent again after a refused
// connection; larger ones are streamed and not retried.
const maxRetriedBody = 4 << 20

func newProxy() *proxy {
	p := &proxy{
		http1: &http.Transport{
			Proxy:               nil, // never through an HTTP proxy of the environment
			DialContext:         (&net.Dialer{}).DialContext,
			MaxIdleConnsPerHost: 32,
		},
		// HTTP/2 with prior knowledge over plain TCP: what a gRPC server without TLS speaks.
		h2c: &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, address string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, address)
			},
		},
	}
	p.table.Store(&table{})
	p.forward = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			target := r.In.Context().Value(chosenKey{}).(chosen)
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = target.endpoint
			r.Out.Host = r.In.Host // the backend sees the host the client asked for
			r.SetXForwarded()
		},
		Transport:     roundTripperFunc(p.roundTrip),
		FlushInterval: -1, // streamed responses (gRPC, server-sent events) go out as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Printf("%s %s%s: %v", r.Method, r.Host, r.URL.Path, err)
			http.Error(w, fmt.Sprintf("servekit-gateway: upstream %s: %v", r.Context().Value(chosenKey{}).(chosen).endpoint, err),
				http.StatusBadGateway)
		},
	}
	return p
}

// roundTrip sends r to its chosen endpoint, and to the backend's others while connecting fails.
func (p *proxy) roundTrip(r *http.Request) (*http.Response, error) {
	target := r.Context().Value(chosenKey{}).(chosen)
	transport := p.http1
	if target.h2c {
		transport = p.h2c
	}
	response, err := transport.RoundTrip(r)
	for _, other := range target.others {
		if err == nil || !connectFailed(err) || (r.Body != nil && r.GetBody == nil) {
			break
		}
		retry := r.Clone(r.Context())
		if r.GetBody != nil {
			if retry.Body, err = r.GetBody(); err != nil {
				return nil, err
			}
		}
		log.Printf("%s %s%s: %s refused the connection; sending it to %s", r.Method, r.Host, r.URL.Path, retry.URL.Host, other)
		retry.URL.Host = other
		response, err = transport.RoundTrip(retry)
	}
	return response, err
}

// connectFailed: the request never left, so sending it elsewhere cannot repeat it.
func connectFailed(err error) bool {
	var opError *net.OpError
	return errors.As(err, &opError) && opError.Op == "dial"
}

// keepBody reads a small body into memory, so roundTrip can send it again.
func keepBody(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength < 0 || r.ContentLength > maxRetriedBody {
		return nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return nil
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	var picked *rule
	for _, e := range p.table.Load().entries {
		if hostMatches(e.hostname, host) && e.match.matches(r) {
			picked = e.rule
			break
		}
	}
	if picked == nil {
		http.Error(w, fmt.Sprintf("servekit-gateway: no HTTPRoute matches host %q path %q", host, r.URL.Path), http.StatusNotFound)
		return
	}
	b := picked.pick()
	switch {
	case b == nil:
		http.Error(w, fmt.Sprintf("servekit-gateway: HTTPRoute %s has no backend with weight", picked.route), http.StatusInternalServerError)
		return
	case b.invalid != "":
		http.Error(w, fmt.Sprintf("servekit-gateway: HTTPRoute %s: %s", picked.route, b.invalid), http.StatusInternalServerError)
		return
	case len(b.endpoints) == 0:
		http.Error(w, fmt.Sprintf("servekit-gateway: Service %s has no ready endpoints", b.service), http.StatusServiceUnavailable)
		return
	}
	modifyHeaders(r.Header, picked.headers)
	if err := keepBody(r); err != nil {
		http.Error(w, fmt.Sprintf("servekit-gateway: reading the request body: %v", err), http.StatusBadRequest)
		return
	}
	order := rand.Perm(len(b.endpoints))
	target := chosen{endpoint: b.endpoints[order[0]], h2c: b.h2c}
	for _, i := range order[1:] {
		target.others = append(target.others, b.endpoints[i])
	}
	p.forward.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), chosenKey{}, target)))
}

// pick draws a backend with probability weight/total.
func (r *rule) pick() *backend {
	if r.total <= 0 {
		return nil
	}
	n := rand.Int32N(r.total)
	for i := range r.backends {
		if n < r.backends[i].weight {
			return &r.backends[i]
		}
		n -= r.backends[i].weight
	}
	return nil
}

func hostMatches(pattern, host string) bool {
	switch {
	case pattern == "":
		return true
	case strings.HasPrefix(pattern, "*."):
		return strings.HasSuffix(host, pattern[1:]) && len(host) > len(pattern)-1
	}
	return pattern == host
}

func (m matcher) matches(r *http.Request) bool {
	path := r.URL.Path
	switch m.pathType {
	case "Exact":
		if path != m.path {
			return false
		}
	case "PathPrefix":
		if m.path != "/" && path != m.path && !strings.HasPrefix(path, m.path+"/") {
			return false
		}
	case "RegularExpression":
		if !m.pathRegexp.MatchString(path) {
			return false
		}
	}
	if m.method != "" && r.Method != m.method {
		return false
	}
	for _, h := range m.headers {
		if !h.matches(r.Header.Values(h.name)) {
			return false
		}
	}
	if len(m.queryParams) > 0 {
		query := r.URL.Query()
		for _, q := range m.queryParams {
			if !q.matches(query[q.name]) {
				return false
			}
		}
	}
	return true
}

func (v valueMatch) matches(values []string) bool {
	if len(values) == 0 {
		return false
	}
	// Repeated headers match as one comma-joined value, as the spec says.
	value := strings.Join(values, ",")
	if v.regexp != nil {
		return v.regexp.MatchString(value)
	}
	return value == v.value
}

func modifyHeaders(h http.Header, filter *gatewayv1.HTTPHeaderFilter) {
	if filter == nil {
		return
	}
	for _, set := range filter.Set {
		h.Set(string(set.Name), set.Value)
	}
	for _, add := range filter.Add {
		h.Add(string(add.Name), add.Value)
	}
	for _, name := range filter.Remove {
		h.Del(name)
	}
}

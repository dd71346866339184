package main

import (
	"net/http/httptest"
	"testing"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func pathMatch(kind gatewayv1.PathMatchType, value string) gatewayv1.HTTPRouteMatch {
	return gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: &kind, Value: &value}}
}

// The rule the spec's precedence picks among matches that all match a request.
func TestPrecedencePicksTheMostSpecificMatch(t *testing.T) {
	exact := gatewayv1.HeaderMatchExact
	matches := map[string]gatewayv1.HTTPRouteMatch{
		"prefix /":        pathMatch(gatewayv1.PathMatchPathPrefix, "/"),
		"prefix /v2":      pathMatch(gatewayv1.PathMatchPathPrefix, "/v2"),
		"regex /v2/.*":    pathMatch(gatewayv1.PathMatchRegularExpression, "/v2/.*"),
		"exact":           pathMatch(gatewayv1.PathMatchExact, "/v2/models/iris/infer"),
		"prefix + header": {Path: pathMatch(gatewayv1.PathMatchPathPrefix, "/v2").Path, Headers: []gatewayv1.HTTPHeaderMatch{{Type: &exact, Name: "X-Canary", Value: "true"}}},
	}
	cases := []struct {
		path    string
		headers map[string]string
		want    string
	}{
		{"/v2/models/iris/infer", nil, "exact"},
		{"/v2/models/iris/ready", map[string]string{"X-Canary": "true"}, "prefix + header"},
		{"/v2/models/iris/ready", nil, "prefix /v2"},
		{"/v2", nil, "prefix /v2"},
		{"/v2x", nil, "prefix /"},
		{"/v1/models", nil, "prefix /"},
	}
	var entries []entry
	for name, m := range matches {
		compiled, order, err := compileMatch(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		order.route = name
		entries = append(entries, entry{match: compiled, rule: &rule{route: name}, order: order})
	}
	sortEntries(entries)
	for _, c := range cases {
		request := httptest.NewRequest("GET", c.path, nil)
		for name, value := range c.headers {
			request.Header.Set(name, value)
		}
		got := ""
		for _, e := range entries {
			if e.match.matches(request) {
				got = e.rule.route
				break
			}
		}
		if got != c.want {
			t.Errorf("%s %v: picked %q, want %q", c.path, c.headers, got, c.want)
		}
	}
}

func TestHostnames(t *testing.T) {
	cases := []struct {
		pattern, host string
		want          bool
	}{
		{"", "anything.test", true},
		{"iris.models.example.com", "iris.models.example.com", true},
		{"iris.models.example.com", "other.models.example.com", false},
		{"*.example.com", "iris.models.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "badexample.com", false},
	}
	for _, c := range cases {
		if got := hostMatches(c.pattern, c.host); got != c.want {
			t.Errorf("hostMatches(%q, %q) = %v, want %v", c.pattern, c.host, got, c.want)
		}
	}
}

func TestWeightsDrawInProportion(t *testing.T) {
	r := &rule{backends: []backend{{service: "a", weight: 1}, {service: "b", weight: 3}, {service: "never", weight: 0}}, total: 4}
	counts := map[string]int{}
	for range 40000 {
		counts[r.pick().service]++
	}
	if counts["never"] != 0 || counts["b"] < 29000 || counts["b"] > 31000 {
		t.Errorf("weights 1:3:0 drew %v", counts)
	}
}

func TestUnsupportedMatchIsAnError(t *testing.T) {
	if _, _, err := compileMatch(pathMatch(gatewayv1.PathMatchRegularExpression, "(")); err == nil {
		t.Error("an invalid regular expression compiled")
	}
}

package main

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewaylisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"
)

// The appProtocol of a Service port whose endpoints speak HTTP/2 without TLS (Kubernetes' own name).
const appProtocolH2C = "kubernetes.io/h2c"

type clusterListers struct {
	services       corelisters.ServiceLister
	endpointSlices discoverylisters.EndpointSliceLister
	classes        gatewaylisters.GatewayClassLister
	gateways       gatewaylisters.GatewayLister
	routes         gatewaylisters.HTTPRouteLister
}

// table is what the proxy routes by: entries sorted by the Gateway API's match precedence, so the
// first entry that matches a request is the one the spec picks.
type table struct {
	entries []entry
}

type entry struct {
	hostname string // "" matches any host; "*.example.com" any host under it
	match    matcher
	rule     *rule
	order    precedence
}

type matcher struct {
	pathType    gatewayv1.PathMatchType
	path        string
	pathRegexp  *regexp.Regexp
	method      string
	headers     []valueMatch
	queryParams []valueMatch
}

type valueMatch struct {
	name   string
	value  string
	regexp *regexp.Regexp // set for RegularExpression matches
}

type rule struct {
	route    string // NAMESPACE/NAME, for logs and errors
	backends []backend
	total    int32 // sum of the backends' weights
	headers  *gatewayv1.HTTPHeaderFilter
}

type backend struct {
	service   string // NAMESPACE/NAME:PORT
	weight    int32
	endpoints []string // HOST:PORT of ready endpoints
	h2c       bool
	invalid   string // why the ref did not resolve: requests it gets are answered 500
}

// precedence orders entries the way the Gateway API spec says ties between matching routes break.
type precedence struct {
	hostRank   int // exact > wildcard > any, longer first within one kind
	pathRank   int // Exact > PathPrefix > RegularExpression
	pathLength int
	method     bool
	headers    int
	query      int
	created    int64 // older route first
	route      string
	ruleIndex  int
}

func (p precedence) before(q precedence) bool {
	switch {
	case p.hostRank != q.hostRank:
		return p.hostRank > q.hostRank
	case p.pathRank != q.pathRank:
		return p.pathRank > q.pathRank
	case p.pathLength != q.pathLength:
		return p.pathLength > q.pathLength
	case p.method != q.method:
		return p.method
	case p.headers != q.headers:
		return p.headers > q.headers
	case p.query != q.query:
		return p.query > q.query
	case p.created != q.created:
		return p.created < q.created
	case p.route != q.route:
		return p.route < q.route
	}
	return p.ruleIndex < q.ruleIndex
}

func hostRank(hostname string) int {
	switch {
	case hostname == "":
		return 0
	case strings.HasPrefix(hostname, "*."):
		return 1000 + len(hostname)
	}
	return 2000 + len(hostname)
}

// routeResult is what building the table learnt about one route, for its status.
type routeResult struct {
	route        *gatewayv1.HTTPRoute
	parentIndex  int    // the parentRef naming our Gateway
	unresolved   string // why a backendRef did not resolve; "" when all did
	unresolvedBy gatewayv1.RouteConditionReason
}

// attached reports the index of the parentRef that names the Gateway, or -1.
func attached(route *gatewayv1.HTTPRoute, namespace, name string) int {
	for i, parent := range route.Spec.ParentRefs {
		group := gatewayv1.GroupName
		if parent.Group != nil {
			group = string(*parent.Group)
		}
		kind := "Gateway"
		if parent.Kind != nil {
			kind = string(*parent.Kind)
		}
		parentNamespace := route.Namespace
		if parent.Namespace != nil {
			parentNamespace = string(*parent.Namespace)
		}
		if group == gatewayv1.GroupName && kind == "Gateway" && parentNamespace == namespace && string(parent.Name) == name {
			return i
		}
	}
	return -1
}

// buildTable turns every HTTPRoute attached to the Gateway into entries; routes is what each
// route's status should say.
func buildTable(l clusterListers, namespace, name string) (*table, []routeResult, error) {
	routes, err := l.routes.List(labels.Everything())
	if err != nil {
		return nil, nil, err
	}
	t := &table{}
	var results []routeResult
	for _, route := range routes {
		parent := attached(route, namespace, name)
		if parent < 0 {
			continue
		}
		result := routeResult{route: route, parentIndex: parent}
		key := route.Namespace + "/" + route.Name
		hostnames := []string{""}
		if len(route.Spec.Hostnames) > 0 {
			hostnames = hostnames[:0]
			for _, h := range route.Spec.Hostnames {
				hostnames = append(hostnames, strings.ToLower(string(h)))
			}
		}
		for ruleIndex, specRule := range route.Spec.Rules {
			r := &rule{route: key}
			for _, ref := range specRule.BackendRefs {
				b, reason, why := resolveBackend(l, route.Namespace, ref.BackendRef)
				if why != "" {
					b.invalid = why
					result.unresolved, result.unresolvedBy = why, reason
				}
				// An unresolved backend keeps its share of the traffic, answered 500 as the spec says.
				r.backends = append(r.backends, b)
				r.total += b.weight
			}
			for _, filter := range specRule.Filters {
				if filter.Type == gatewayv1.HTTPRouteFilterRequestHeaderModifier {
					r.headers = filter.RequestHeaderModifier
				}
			}
			matches := specRule.Matches
			if len(matches) == 0 {
				matches = []gatewayv1.HTTPRouteMatch{{}}
			}
			for _, m := range matches {
				compiled, order, err := compileMatch(m)
				if err != nil {
					result.unresolved = fmt.Sprintf("rule %d: %v", ruleIndex, err)
					result.unresolvedBy = "UnsupportedValue"
					continue
				}
				order.created = route.CreationTimestamp.UnixNano()
				order.route = key
				order.ruleIndex = ruleIndex
				for _, hostname := range hostnames {
					order.hostRank = hostRank(hostname)
					t.entries = append(t.entries, entry{hostname: hostname, match: compiled, rule: r, order: order})
				}
			}
		}
		results = append(results, result)
	}
	sortEntries(t.entries)
	return t, results, nil
}

func sortEntries(entries []entry) {
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].order.before(entries[j].order) })
}

func compileMatch(m gatewayv1.HTTPRouteMatch) (matcher, precedence, error) {
	c := matcher{pathType: gatewayv1.PathMatchPathPrefix, path: "/"}
	if m.Path != nil {
		if m.Path.Type != nil {
			c.pathType = *m.Path.Type
		}
		if m.Path.Value != nil {
			c.path = *m.Path.Value
		}
	}
	var order precedence
	switch c.pathType {
	case gatewayv1.PathMatchExact:
		order.pathRank = 3
	case gatewayv1.PathMatchPathPrefix:
		order.pathRank = 2
		if c.path != "/" {
			c.path = strings.TrimSuffix(c.path, "/")
		}
	case gatewayv1.PathMatchRegularExpression:
		order.pathRank = 1
		compiled, err := anchored(c.path)
		if err != nil {
			return c, order, fmt.Errorf("path regular expression %q: %w", c.path, err)
		}
		c.pathRegexp = compiled
	default:
		return c, order, fmt.Errorf("path match type %q is not supported (Exact, PathPrefix, RegularExpression are)", c.pathType)
	}
	order.pathLength = len(c.path)
	if m.Method != nil {
		c.method = string(*m.Method)
		order.method = true
	}
	for _, h := range m.Headers {
		v, err := compileValue(string(h.Name), h.Value, h.Type)
		if err != nil {
			return c, order, err
		}
		c.headers = append(c.headers, v)
	}
	for _, q := range m.QueryParams {
		if q.Type != nil && *q.Type != gatewayv1.QueryParamMatchExact {
			return c, order, fmt.Errorf("query parameter match type %q is not supported (Exact is)", *q.Type)
		}
		c.queryParams = append(c.queryParams, valueMatch{name: string(q.Name), value: q.Value})
	}
	order.headers = len(c.headers)
	order.query = len(c.queryParams)
	return c, order, nil
}

func compileValue(name, value string, kind *gatewayv1.HeaderMatchType) (valueMatch, error) {
	v := valueMatch{name: name, value: value}
	if kind == nil || *kind == gatewayv1.HeaderMatchExact {
		return v, nil
	}
	if *kind != gatewayv1.HeaderMatchRegularExpression {
		return v, fmt.Errorf("header match type %q is not supported (Exact, RegularExpression are)", *kind)
	}
	compiled, err := anchored(value)
	if err != nil {
		return v, fmt.Errorf("header %s regular expression %q: %w", name, value, err)
	}
	v.regexp = compiled
	return v, nil
}

// Regular expressions match the whole value, as Envoy-based implementations do.
func anchored(expression string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + expression + ")$")
}

// resolveBackend finds a backendRef's Service port and its ready endpoints. A reason and message
// come back when it does not resolve (the HTTPRoute's ResolvedRefs condition says them).
func resolveBackend(l clusterListers, namespace string, ref gatewayv1.BackendRef) (backend, gatewayv1.RouteConditionReason, string) {
	b := backend{weight: 1}
	if ref.Weight != nil {
		b.weight = *ref.Weight
	}
	if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Service") {
		return b, gatewayv1.RouteReasonInvalidKind, fmt.Sprintf("backendRef %s: only Services are supported", ref.Name)
	}
	if ref.Namespace != nil && string(*ref.Namespace) != namespace {
		return b, gatewayv1.RouteReasonRefNotPermitted,
			fmt.Sprintf("backendRef %s/%s: only Services in the route's namespace %s are supported", *ref.Namespace, ref.Name, namespace)
	}
	if ref.Port == nil {
		return b, gatewayv1.RouteReasonUnsupportedValue, fmt.Sprintf("backendRef %s: a port is required", ref.Name)
	}
	b.service = fmt.Sprintf("%s/%s:%d", namespace, ref.Name, *ref.Port)
	service, err := l.services.Services(namespace).Get(string(ref.Name))
	if errors.IsNotFound(err) {
		return b, gatewayv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s/%s does not exist", namespace, ref.Name)
	} else if err != nil {
		return b, gatewayv1.RouteReasonBackendNotFound, err.Error()
	}
	var port *corev1.ServicePort
	for i := range service.Spec.Ports {
		if service.Spec.Ports[i].Port == *ref.Port {
			port = &service.Spec.Ports[i]
		}
	}
	if port == nil {
		return b, gatewayv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s/%s has no port %d", namespace, ref.Name, *ref.Port)
	}
	b.h2c = port.AppProtocol != nil && *port.AppProtocol == appProtocolH2C
	slices, err := l.endpointSlices.EndpointSlices(namespace).List(
		labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service.Name}))
	if err != nil {
		return b, gatewayv1.RouteReasonBackendNotFound, err.Error()
	}
	for _, slice := range slices {
		for _, slicePort := range slice.Ports {
			if slicePort.Port == nil || ptrValue(slicePort.Name) != port.Name {
				continue
			}
			for _, endpoint := range slice.Endpoints {
				if endpoint.Conditions.Ready != nil && !*endpoint.Conditions.Ready {
					continue
				}
				for _, address := range endpoint.Addresses {
					b.endpoints = append(b.endpoints, joinHostPort(address, *slicePort.Port))
				}
			}
		}
	}
	sort.Strings(b.endpoints)
	return b, "", ""
}

func joinHostPort(host string, port int32) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(int(port))
	}
	return host + ":" + strconv.Itoa(int(port))
}

func ptrValue(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

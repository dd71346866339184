// Command servekit-gateway is the control-plane harness's Gateway API data plane: it serves one
// Gateway (KServe's kserve/kserve-ingress-gateway) on the addresses it is told to listen on,
// routing by the HTTPRoutes attached to it to the ready endpoints of their backend Services, and
// writes the GatewayClass, Gateway and HTTPRoute status a controller owes (KServe waits for it).
//
// Why not Traefik, which the issue suggested: its main package links its ACME provider, whose
// DNS-provider SDKs (29 modules) and basic-auth fork the Go module proxy here does not serve, so
// it cannot be built here. Envoy-based implementations need an Envoy binary, which cannot be had.
// What is implemented is what KServe and the tests use (docs/controlplane.md lists it):
// hostnames (exact and wildcard), path matches (Exact, PathPrefix, RegularExpression), header
// matches (Exact, RegularExpression), method and query-parameter (Exact) matches with the
// spec's precedence, weighted backendRefs to Services in the route's namespace, the
// RequestHeaderModifier filter, and HTTP/2 without TLS (h2c) end to end, so gRPC passes through
// an HTTPRoute whose Service port says appProtocol kubernetes.io/h2c.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
)

// listFlag collects a flag given more than once.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	kubeconfig     string
	gateway        string
	controllerName string
	listenerPort   int
	address        string
	listen         listFlag
}

func parseOptions() options {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster to serve")
	flag.StringVar(&o.gateway, "gateway", "kserve/kserve-ingress-gateway", "NAMESPACE/NAME of the Gateway to serve")
	flag.StringVar(&o.controllerName, "controller-name", "servekit.dev/gateway-controller",
		"the GatewayClass controllerName this process answers for")
	flag.IntVar(&o.listenerPort, "listener-port", 80, "the Gateway listener port the --listen addresses stand for")
	flag.StringVar(&o.address, "address", "127.0.0.1", "the address written to the Gateway's status")
	flag.Var(&o.listen, "listen", "HOST:PORT to serve the listener on (repeatable)")
	flag.Parse()
	if len(o.listen) == 0 {
		log.Fatal("at least one --listen HOST:PORT is required")
	}
	if _, _, err := splitName(o.gateway); err != nil {
		log.Fatal(err)
	}
	return o
}

func splitName(namespaced string) (string, string, error) {
	namespace, name, ok := strings.Cut(namespaced, "/")
	if !ok || namespace == "" || name == "" {
		return "", "", fmt.Errorf("--gateway %q: expected NAMESPACE/NAME", namespaced)
	}
	return namespace, name, nil
}

func main() {
	o := parseOptions()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, o options) error {
	config, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("reading the kubeconfig %q: %w", o.kubeconfig, err)
	}
	kube := kubernetes.NewForConfigOrDie(config)
	gateways := gatewayclient.NewForConfigOrDie(config)
	namespace, name, _ := splitName(o.gateway)

	kubeInformers := informers.NewSharedInformerFactory(kube, 0)
	gatewayInformers := gatewayinformers.NewSharedInformerFactory(gateways, 0)
	changed := make(chan struct{}, 1)
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke(changed) },
		UpdateFunc: func(any, any) { poke(changed) },
		DeleteFunc: func(any) { poke(changed) },
	}
	listers := clusterListers{
		services:       kubeInformers.Core().V1().Services().Lister(),
		endpointSlices: kubeInformers.Discovery().V1().EndpointSlices().Lister(),
		classes:        gatewayInformers.Gateway().V1().GatewayClasses().Lister(),
		gateways:       gatewayInformers.Gateway().V1().Gateways().Lister(),
		routes:         gatewayInformers.Gateway().V1().HTTPRoutes().Lister(),
	}
	for _, informer := range []cache.SharedIndexInformer{
		kubeInformers.Core().V1().Services().Informer(),
		kubeInformers.Discovery().V1().EndpointSlices().Informer(),
		gatewayInformers.Gateway().V1().GatewayClasses().Informer(),
		gatewayInformers.Gateway().V1().Gateways().Informer(),
		gatewayInformers.Gateway().V1().HTTPRoutes().Informer(),
	} {
		if _, err := informer.AddEventHandler(notify); err != nil {
			return err
		}
	}
	kubeInformers.Start(ctx.Done())
	gatewayInformers.Start(ctx.Done())
	kubeInformers.WaitForCacheSync(ctx.Done())
	gatewayInformers.WaitForCacheSync(ctx.Done())

	proxy := newProxy()
	servers, err := listen(o.listen, proxy)
	if err != nil {
		return err
	}
	reconciler := &reconciler{
		options: o, namespace: namespace, name: name, listers: listers, gateways: gateways, proxy: proxy,
	}
	log.Printf("serving Gateway %s for controller %s on %s", o.gateway, o.controllerName, o.listen.String())
	// Rebuilt on every change (coalesced), and every 30 s in case a status write was lost.
	resync := time.NewTicker(30 * time.Second)
	defer resync.Stop()
	poke(changed)
	for {
		select {
		case <-ctx.Done():
			shutdown(servers)
			return nil
		case <-changed:
		case <-resync.C:
		}
		if err := reconciler.reconcile(ctx); err != nil {
			log.Printf("reconciling: %v (retrying in 1s)", err)
			time.AfterFunc(time.Second, func() { poke(changed) })
		}
	}
}

func poke(changed chan<- struct{}) {
	select {
	case changed <- struct{}{}:
	default:
	}
}

// listen serves the proxy on every address, HTTP/1.1 and h2c (HTTP/2 with prior knowledge, as
// gRPC clients speak it without TLS) alike.
func listen(addresses []string, handler http.Handler) ([]*http.Server, error) {
	servers := make([]*http.Server, 0, len(addresses))
	for _, address := range addresses {
		listener, err := net.Listen("tcp", address)
		if err != nil {
			shutdown(servers)
			return nil, fmt.Errorf("listening on %s: %w", address, err)
		}
		server := &http.Server{Handler: h2c.NewHandler(handler, &http2.Server{}), ReadHeaderTimeout: 30 * time.Second}
		go func() {
			if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Fatalf("serving on %s: %v", address, err)
			}
		}()
		servers = append(servers, server)
	}
	return servers, nil
}

func shutdown(servers []*http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, server := range servers {
		_ = server.Shutdown(ctx)
	}
}

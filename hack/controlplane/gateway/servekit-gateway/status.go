package main

import (
	"context"
	"fmt"
	"log"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// reconciler rebuilds the routing table and writes the status a Gateway API controller owes.
type reconciler struct {
	options
	namespace, name string
	listers         clusterListers
	gateways        gatewayclient.Interface
	proxy           *proxy
}

func (r *reconciler) reconcile(ctx context.Context) error {
	gateway, err := r.listers.gateways.Gateways(r.namespace).Get(r.name)
	if errors.IsNotFound(err) {
		r.proxy.table.Store(&table{})
		return nil // nothing to serve until it is made
	} else if err != nil {
		return err
	}
	class, err := r.listers.classes.Get(string(gateway.Spec.GatewayClassName))
	if errors.IsNotFound(err) || (err == nil && string(class.Spec.ControllerName) != r.controllerName) {
		r.proxy.table.Store(&table{})
		log.Printf("Gateway %s/%s: its GatewayClass %s is not ours (%s): serving nothing", r.namespace, r.name,
			gateway.Spec.GatewayClassName, r.controllerName)
		return nil
	} else if err != nil {
		return err
	}
	t, routes, err := buildTable(r.listers, r.namespace, r.name)
	if err != nil {
		return err
	}
	r.proxy.table.Store(t)
	if err := r.writeClassStatus(ctx, class); err != nil {
		return err
	}
	if err := r.writeGatewayStatus(ctx, gateway, len(routes)); err != nil {
		return err
	}
	for _, result := range routes {
		if err := r.writeRouteStatus(ctx, result); err != nil {
			return err
		}
	}
	return nil
}

func condition(kind string, ok bool, reason, message string, generation int64) metav1.Condition {
	status := metav1.ConditionTrue
	if !ok {
		status = metav1.ConditionFalse
	}
	return metav1.Condition{Type: kind, Status: status, Reason: reason, Message: message, ObservedGeneration: generation}
}

func (r *reconciler) writeClassStatus(ctx context.Context, class *gatewayv1.GatewayClass) error {
	updated := class.DeepCopy()
	meta.SetStatusCondition(&updated.Status.Conditions, condition(string(gatewayv1.GatewayClassConditionStatusAccepted), true,
		string(gatewayv1.GatewayClassReasonAccepted), "served by servekit-gateway", class.Generation))
	if equality.Semantic.DeepEqual(updated.Status, class.Status) {
		return nil
	}
	_, err := r.gateways.GatewayV1().GatewayClasses().UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return wrap(err, "GatewayClass", class.Name)
}

func (r *reconciler) writeGatewayStatus(ctx context.Context, gateway *gatewayv1.Gateway, attachedRoutes int) error {
	updated := gateway.DeepCopy()
	generation := gateway.Generation
	served := fmt.Sprintf("listener port %d served on %s", r.listenerPort, r.listen.String())
	meta.SetStatusCondition(&updated.Status.Conditions, condition(string(gatewayv1.GatewayConditionAccepted), true,
		string(gatewayv1.GatewayReasonAccepted), "served by servekit-gateway", generation))
	meta.SetStatusCondition(&updated.Status.Conditions, condition(string(gatewayv1.GatewayConditionProgrammed), true,
		string(gatewayv1.GatewayReasonProgrammed), served, generation))
	addressType := gatewayv1.IPAddressType
	updated.Status.Addresses = []gatewayv1.GatewayStatusAddress{{Type: &addressType, Value: r.address}}
	previous := map[gatewayv1.SectionName][]metav1.Condition{}
	for _, l := range gateway.Status.Listeners {
		previous[l.Name] = l.Conditions
	}
	updated.Status.Listeners = nil
	for _, listener := range gateway.Spec.Listeners {
		conditions := append([]metav1.Condition(nil), previous[listener.Name]...)
		ok := listener.Protocol == gatewayv1.HTTPProtocolType && int(listener.Port) == r.listenerPort
		reason, message := string(gatewayv1.ListenerReasonProgrammed), served
		if !ok {
			reason = string(gatewayv1.ListenerReasonPortUnavailable)
			message = fmt.Sprintf("servekit-gateway serves only the HTTP listener on port %d", r.listenerPort)
		}
		meta.SetStatusCondition(&conditions, condition(string(gatewayv1.ListenerConditionAccepted), ok, reason, message, generation))
		meta.SetStatusCondition(&conditions, condition(string(gatewayv1.ListenerConditionProgrammed), ok, reason, message, generation))
		meta.SetStatusCondition(&conditions, condition(string(gatewayv1.ListenerConditionResolvedRefs), true,
			string(gatewayv1.ListenerReasonResolvedRefs), "no references to resolve", generation))
		updated.Status.Listeners = append(updated.Status.Listeners, gatewayv1.ListenerStatus{
			Name:           listener.Name,
			SupportedKinds: []gatewayv1.RouteGroupKind{{Group: ptr(gatewayv1.Group(gatewayv1.GroupName)), Kind: "HTTPRoute"}},
			AttachedRoutes: int32(attachedRoutes),
			Conditions:     conditions,
		})
	}
	if equality.Semantic.DeepEqual(updated.Status, gateway.Status) {
		return nil
	}
	_, err := r.gateways.GatewayV1().Gateways(gateway.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return wrap(err, "Gateway", gateway.Namespace+"/"+gateway.Name)
}

// writeRouteStatus sets our entry of status.parents, leaving other controllers' entries alone.
func (r *reconciler) writeRouteStatus(ctx context.Context, result routeResult) error {
	route := result.route
	updated := route.DeepCopy()
	ref := route.Spec.ParentRefs[result.parentIndex]
	index := -1
	for i, parent := range updated.Status.Parents {
		if string(parent.ControllerName) == r.controllerName && equality.Semantic.DeepEqual(parent.ParentRef, ref) {
			index = i
		}
	}
	if index < 0 {
		updated.Status.Parents = append(updated.Status.Parents, gatewayv1.RouteParentStatus{
			ParentRef: ref, ControllerName: gatewayv1.GatewayController(r.controllerName),
		})
		index = len(updated.Status.Parents) - 1
	}
	conditions := &updated.Status.Parents[index].Conditions
	meta.SetStatusCondition(conditions, condition(string(gatewayv1.RouteConditionAccepted), true,
		string(gatewayv1.RouteReasonAccepted), "attached to "+r.namespace+"/"+r.name, route.Generation))
	if result.unresolved == "" {
		meta.SetStatusCondition(conditions, condition(string(gatewayv1.RouteConditionResolvedRefs), true,
			string(gatewayv1.RouteReasonResolvedRefs), "every backendRef resolved", route.Generation))
	} else {
		meta.SetStatusCondition(conditions, condition(string(gatewayv1.RouteConditionResolvedRefs), false,
			string(result.unresolvedBy), result.unresolved, route.Generation))
	}
	if equality.Semantic.DeepEqual(updated.Status, route.Status) {
		return nil
	}
	_, err := r.gateways.GatewayV1().HTTPRoutes(route.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return wrap(err, "HTTPRoute", route.Namespace+"/"+route.Name)
}

func wrap(err error, kind, name string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("writing the status of %s %s: %w", kind, name, err)
}

func ptr[T any](v T) *T { return &v }

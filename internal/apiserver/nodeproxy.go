package apiserver

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// The pod subresources the API server hands to the pod's node agent, and
// the agent path each one maps to (the kubelet's).
var nodeSubresources = map[string]string{
	"log":         "containerLogs",
	"exec":        "exec",
	"attach":      "attach",
	"portforward": "portForward",
}

// proxyToNode serves pods/log, exec, attach and portforward by proxying
// to the agent on the pod's node, authenticated both ways: the caller to
// us, us to the agent with our own client certificate. Upgrades (SPDY,
// WebSocket) pass through unchanged.
func (rq *request) proxyToNode() error {
	if rq.s.cfg.NodeTransport == nil {
		return apierrors.NewServiceUnavailable("this server has no access to node agents")
	}
	obj, err := rq.res.Get(rq.ctx, rq.info.Namespace, rq.info.Name)
	if err != nil {
		return rq.storageErr(err)
	}
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	q := rq.r.URL.Query()
	path := "/" + nodeSubresources[rq.info.Subresource] + "/" + pod.Namespace + "/" + pod.Name
	if rq.info.Subresource != "portforward" {
		container, err := podContainer(pod, q.Get("container"))
		if err != nil {
			return err
		}
		q.Del("container")
		path += "/" + container
	}
	nodeRes, ok := rq.s.store.Resource(corev1.Resource("nodes"))
	if !ok {
		return apierrors.NewServiceUnavailable("nodes are not served")
	}
	nodeObj, err := nodeRes.Get(rq.ctx, "", pod.Spec.NodeName)
	if err != nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("node %q of pod %s: %v", pod.Spec.NodeName, pod.Name, err))
	}
	host, err := agentAddress(nodeObj.(*corev1.Node))
	if err != nil {
		return apierrors.NewServiceUnavailable(err.Error())
	}
	target := &url.URL{Scheme: "https", Host: host, Path: path, RawQuery: q.Encode()}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = target.Host
			// The agent authenticates us by our certificate, not by what
			// the caller sent.
			pr.Out.Header.Del("Authorization")
		},
		Transport:     rq.s.cfg.NodeTransport,
		FlushInterval: -1, // logs -f: every write reaches the client at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			rq.s.writeError(w, r, apierrors.NewServiceUnavailable(fmt.Sprintf("error talking to the agent of node %q: %v", pod.Spec.NodeName, err)))
		},
	}
	proxy.ServeHTTP(rq.w, rq.r)
	return nil
}

// podContainer picks the container a request means: the named one, or
// the only one; with several and none named, the caller must choose, as
// upstream says.
func podContainer(pod *corev1.Pod, name string) (string, error) {
	if name != "" {
		for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
			if c.Name == name {
				return name, nil
			}
		}
		for _, c := range pod.Spec.EphemeralContainers {
			if c.Name == name {
				return name, nil // kubectl debug attaches to one, logs reads one
			}
		}
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
	}
	if len(pod.Spec.Containers) == 1 {
		return pod.Spec.Containers[0].Name, nil
	}
	names := make([]string, len(pod.Spec.Containers))
	for i, c := range pod.Spec.Containers {
		names[i] = c.Name
	}
	msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", pod.Name, strings.Join(names, " "))
	if len(pod.Spec.InitContainers) > 0 {
		inits := make([]string, len(pod.Spec.InitContainers))
		for i, c := range pod.Spec.InitContainers {
			inits[i] = c.Name
		}
		msg += fmt.Sprintf(" or one of the init containers: [%s]", strings.Join(inits, " "))
	}
	return "", apierrors.NewBadRequest(msg)
}

// agentAddress is where a node's agent listens: its InternalIP (else any
// address) and the port it reports.
func agentAddress(node *corev1.Node) (string, error) {
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port == 0 {
		return "", fmt.Errorf("node %q reports no agent port", node.Name)
	}
	var addr string
	for _, want := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == want && addr == "" {
				addr = a.Address
			}
		}
	}
	if addr == "" {
		return "", fmt.Errorf("node %q reports no address", node.Name)
	}
	return net.JoinHostPort(addr, strconv.Itoa(int(port))), nil
}

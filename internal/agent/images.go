package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ensureImage makes the container's image present as its pull policy
// says, returning the image reference to create the container from, or
// why the container must wait.
func (a *Agent) ensureImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (string, *waiting) {
	spec := &runtimeapi.ImageSpec{Image: c.Image}
	if c.Image == "" {
		return "", &waiting{"InvalidImageName", "image name is empty"}
	}
	if c.ImagePullPolicy != corev1.PullAlways {
		st, err := a.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
		if err == nil && st.Image != nil {
			a.event(pod, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
			return st.Image.Id, nil
		}
		if c.ImagePullPolicy == corev1.PullNever {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			a.event(pod, corev1.EventTypeWarning, "ErrImageNeverPull", "%s", msg)
			return "", &waiting{"ErrImageNeverPull", msg}
		}
	}
	if wait := a.pullWait(pod.UID, c.Name); wait > 0 {
		return "", &waiting{"ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q", c.Image)}
	}
	a.event(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	var lastErr error
	for _, auth := range append(a.pullAuths(ctx, pod, c.Image), nil) {
		resp, err := a.images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec, Auth: auth, SandboxConfig: a.sandboxConfig(pod, 0)})
		if err == nil {
			a.forgetPullBackoff(pod.UID, c.Name)
			a.event(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q", c.Image)
			return resp.ImageRef, nil
		}
		lastErr = err
	}
	a.pullBackoff(pod.UID, c.Name)
	msg := fmt.Sprintf("Failed to pull image %q: %v", c.Image, lastErr)
	a.event(pod, corev1.EventTypeWarning, "Failed", "%s", msg)
	return "", &waiting{"ErrImagePull", msg}
}

// pullAuths are the credentials from the pod's imagePullSecrets that
// match the image's registry.
func (a *Agent) pullAuths(ctx context.Context, pod *corev1.Pod, image string) []*runtimeapi.AuthConfig {
	host := registryHost(image)
	var out []*runtimeapi.AuthConfig
	for _, ref := range pod.Spec.ImagePullSecrets {
		secret, err := a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		var cfg struct {
			Auths map[string]struct {
				Username, Password, Auth string
			} `json:"auths"`
		}
		switch secret.Type {
		case corev1.SecretTypeDockerConfigJson:
			_ = json.Unmarshal(secret.Data[corev1.DockerConfigJsonKey], &cfg)
		case corev1.SecretTypeDockercfg:
			_ = json.Unmarshal(secret.Data[corev1.DockerConfigKey], &cfg.Auths)
		}
		for server, entry := range cfg.Auths {
			if registryHost(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")+"/x") != host {
				continue
			}
			user, pass := entry.Username, entry.Password
			if entry.Auth != "" {
				if raw, err := base64.StdEncoding.DecodeString(entry.Auth); err == nil {
					user, pass, _ = strings.Cut(string(raw), ":")
				}
			}
			out = append(out, &runtimeapi.AuthConfig{Username: user, Password: pass, ServerAddress: server})
		}
	}
	return out
}

// registryHost is the registry an image reference names, with Docker's
// defaulting (no host means docker.io).
func registryHost(image string) string {
	first, _, ok := strings.Cut(image, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "docker.io"
	}
	if first == "index.docker.io" || first == "registry-1.docker.io" {
		return "docker.io"
	}
	return first
}

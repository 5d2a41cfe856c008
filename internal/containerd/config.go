package containerd

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
)

// CNIBinDir is where Debian's containernetworking-plugins installs the
// standard plugins.
const CNIBinDir = "/usr/lib/cni"

// MirroredRegistries get a hosts.toml that sends pulls through lotse's
// registry first. containerd 1.6 has no catch-all entry, so the common
// public registries are named one by one.
var MirroredRegistries = []string{
	"docker.io", "registry.k8s.io", "k8s.gcr.io", "gcr.io", "ghcr.io", "quay.io",
	"public.ecr.aws", "mcr.microsoft.com", "lotse.local",
}

// Layout is where one node's runtime keeps its files, all under Dir.
type Layout struct {
	Dir string
}

func (l Layout) ConfigPath() string   { return filepath.Join(l.Dir, "config.toml") }
func (l Layout) Root() string         { return filepath.Join(l.Dir, "root") }
func (l Layout) State() string        { return filepath.Join(l.Dir, "state") }
func (l Layout) LogPath() string      { return filepath.Join(l.Dir, "containerd.log") }
func (l Layout) CNIConfDir() string   { return filepath.Join(l.Dir, "cni", "net.d") }
func (l Layout) CNIDataDir() string   { return filepath.Join(l.Dir, "cni", "ipam") }
func (l Layout) HostsDir() string     { return filepath.Join(l.Dir, "certs.d") }
func (l Layout) Endpoint() string     { return "unix://" + l.Socket() }
func (l Layout) conflistPath() string { return filepath.Join(l.CNIConfDir(), "10-lotse.conflist") }

// Socket is containerd's gRPC socket. Unix socket paths are limited to
// 108 bytes, so a deep data directory gets its socket under /run instead.
func (l Layout) Socket() string {
	p := filepath.Join(l.Dir, "containerd.sock")
	if len(p) < 100 {
		return p
	}
	return fmt.Sprintf("/run/lotse/containerd-%x.sock", sha256.Sum224([]byte(l.Dir)))[:60]
}

// Settings are the node-specific parts of the configuration.
type Settings struct {
	SandboxImage string
	// MirrorURL is the plain-HTTP registry every registry is mirrored
	// through (the agent's loopback proxy to lotse's registry).
	MirrorURL string
	// PodCIDR is the node's pod subnet, handed out by host-local IPAM.
	PodCIDR string
	// Bridge is the Linux bridge the pods attach to.
	Bridge string
}

// Write writes containerd's config, the CNI network and the registry
// mirror files. It is called on every start so that settings follow the
// flags.
func (l Layout) Write(s Settings) error {
	if _, _, err := net.ParseCIDR(s.PodCIDR); err != nil {
		return fmt.Errorf("containerd: pod CIDR: %w", err)
	}
	for _, d := range []string{l.Root(), l.State(), l.CNIConfDir(), l.CNIDataDir(), l.HostsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("containerd: %w", err)
		}
	}
	var cfg bytes.Buffer
	if err := configTemplate.Execute(&cfg, struct {
		Layout
		Settings
		CNIBinDir string
	}{l, s, CNIBinDir}); err != nil {
		return err
	}
	if err := writeFile(l.ConfigPath(), cfg.Bytes()); err != nil {
		return err
	}
	var net bytes.Buffer
	if err := conflistTemplate.Execute(&net, struct {
		Layout
		Settings
	}{l, s}); err != nil {
		return err
	}
	if err := writeFile(l.conflistPath(), net.Bytes()); err != nil {
		return err
	}
	for _, host := range MirroredRegistries {
		dir := filepath.Join(l.HostsDir(), host)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("containerd: %w", err)
		}
		hosts := fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", s.MirrorURL)
		if err := writeFile(filepath.Join(dir, "hosts.toml"), []byte(hosts)); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	return nil
}

// The settings RUNTIME-NOTES.md found necessary on these machines:
// restrict_oom_score_adj (no CAP_SYS_RESOURCE), cgroupfs, no AppArmor,
// runc. Unused snapshotters are disabled to start faster.
var configTemplate = template.Must(template.New("config").Parse(`version = 2
root = "{{.Root}}"
state = "{{.State}}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{{.Socket}}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Root}}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.SandboxImage}}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_tls_streaming = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.CNIBinDir}}"
    conf_dir = "{{.CNIConfDir}}"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{{.HostsDir}}"
`))

// conflistTemplate is the node's CNI network: a bridge with host-local
// addresses. ipMasq is off because the node network (internal/node)
// masquerades only what leaves the cluster network, so pod addresses
// survive between nodes as NetworkPolicy needs.
var conflistTemplate = template.Must(template.New("cni").Parse(`{
  "cniVersion": "0.4.0",
  "name": "lotse",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "{{.Bridge}}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "{{.CNIDataDir}}",
        "ranges": [[{"subnet": "{{.PodCIDR}}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`))

// required names each binary a node needs and the Debian package that
// installs it.
var required = []struct{ binary, pkg string }{
	{"containerd", "containerd"},
	{"containerd-shim-runc-v2", "containerd"},
	{"runc", "runc"},
	{CNIBinDir + "/bridge", "containernetworking-plugins"},
	{CNIBinDir + "/host-local", "containernetworking-plugins"},
	{CNIBinDir + "/portmap", "containernetworking-plugins"},
	{CNIBinDir + "/loopback", "containernetworking-plugins"},
	// The node's Service proxy, NetworkPolicy and routes (internal/node).
	{"nft", "nftables"},
	{"ip", "iproute2"},
}

// CheckBinaries says, in one line, which packages are missing.
func CheckBinaries() error {
	var missing, pkgs []string
	seen := map[string]bool{}
	for _, r := range required {
		if found(r.binary) {
			continue
		}
		missing = append(missing, filepath.Base(r.binary))
		if !seen[r.pkg] {
			seen[r.pkg] = true
			pkgs = append(pkgs, r.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return errors.New("missing " + strings.Join(missing, ", ") + ": install them with `apt-get install " +
		strings.Join(pkgs, " ") + "` (or pass --container-runtime-endpoint, or --disable-agent)")
}

func found(binary string) bool {
	if filepath.IsAbs(binary) {
		st, err := os.Stat(binary)
		return err == nil && st.Mode()&0o111 != 0
	}
	_, err := exec.LookPath(binary)
	return err == nil
}

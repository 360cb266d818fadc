// Package kubernetes holds conductor's Kubernetes manifests; its test decodes every one strictly
// into the k8s.io/api types and checks the security properties and the names they share with
// conductor (settings, probe paths, ports).
package kubernetes

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/conductor-sandbox/conductor/config"
	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// manifests are the decoded files of this directory, one object each.
type manifests struct {
	deploy  *appsv1.Deployment
	service *corev1.Service
	hpa     *autoscalingv2.HorizontalPodAutoscaler
	pdb     *policyv1.PodDisruptionBudget
	netpol  *networkingv1.NetworkPolicy
	secret  *corev1.Secret
	config  *corev1.ConfigMap
}

// load decodes every *.yaml here strictly (an unknown or misspelt field is an error) into the type
// its kind names; a file holds exactly one document.
func load(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests here: %v", err)
	}
	var m manifests
	seen := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if docs := bytes.Split(b, []byte("\n---")); len(docs) != 1 {
			t.Errorf("%s: %d documents, want one per file", f, len(docs))
			continue
		}
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(b, &head); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		var obj any
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			m.deploy = &appsv1.Deployment{}
			obj = m.deploy
		case "v1 Service":
			m.service = &corev1.Service{}
			obj = m.service
		case "autoscaling/v2 HorizontalPodAutoscaler":
			m.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
			obj = m.hpa
		case "policy/v1 PodDisruptionBudget":
			m.pdb = &policyv1.PodDisruptionBudget{}
			obj = m.pdb
		case "networking.k8s.io/v1 NetworkPolicy":
			m.netpol = &networkingv1.NetworkPolicy{}
			obj = m.netpol
		case "v1 Secret":
			m.secret = &corev1.Secret{}
			obj = m.secret
		case "v1 ConfigMap":
			m.config = &corev1.ConfigMap{}
			obj = m.config
		default:
			t.Errorf("%s: unexpected %s %s", f, head.APIVersion, head.Kind)
			continue
		}
		if prev, dup := seen[head.Kind]; dup {
			t.Errorf("%s and %s are both a %s", prev, f, head.Kind)
		}
		seen[head.Kind] = f
		if err := yaml.UnmarshalStrict(b, obj); err != nil {
			t.Errorf("%s: strict decoding into %T: %v", f, obj, err)
		}
	}
	if m.deploy == nil || m.service == nil || m.hpa == nil || m.pdb == nil || m.netpol == nil || m.secret == nil || m.config == nil {
		t.Fatalf("manifests missing; have %v", seen)
	}
	return m
}

func (m manifests) conductor(t *testing.T) *corev1.Container {
	t.Helper()
	for i, c := range m.deploy.Spec.Template.Spec.Containers {
		if c.Name == "conductor" {
			return &m.deploy.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatal("the Deployment has no container named conductor")
	return nil
}

// TestManifestsDecodeStrictly: every file is one object of a known kind with no unknown field.
func TestManifestsDecodeStrictly(t *testing.T) {
	m := load(t)
	if t.Failed() {
		return
	}
	if m.deploy.Name != "conductor" {
		t.Errorf("Deployment name %q", m.deploy.Name)
	}
}

// TestManifestsSecurity: the containers are as narrow as the Deployment's comments say.
func TestManifestsSecurity(t *testing.T) {
	m := load(t)
	pod := m.deploy.Spec.Template.Spec
	if pod.HostUsers == nil || *pod.HostUsers {
		t.Errorf("hostUsers = %v, want false (a pod user namespace; procMount Unmasked needs it)", pod.HostUsers)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("host namespaces shared: network %v, pid %v, ipc %v", pod.HostNetwork, pod.HostPID, pod.HostIPC)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the service account token is mounted; conductor needs no API access")
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and a non-zero runAsUser", psc)
	}
	all := append(slices.Clone(pod.InitContainers), pod.Containers...)
	for _, c := range all {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: no securityContext", c.Name)
			continue
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged (nothing on the node needs preparing from a pod)", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", c.Name)
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities %+v, want drop [ALL] and nothing added", c.Name, sc.Capabilities)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("%s: runs as root", c.Name)
		}
	}
	c := m.conductor(t)
	sc := c.SecurityContext
	if sc.ProcMount == nil || *sc.ProcMount != corev1.UnmaskedProcMount {
		t.Errorf("procMount %s, want Unmasked (sandboxes mount a fresh /proc)", ptrString(sc.ProcMount))
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type == "" {
		t.Error("no seccompProfile: the choice must be explicit")
	}
	if sc.AppArmorProfile == nil || sc.AppArmorProfile.Type == "" {
		t.Error("no appArmorProfile: the choice must be explicit")
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Limits.Cpu().IsZero() {
		t.Error("no memory or CPU limit: the pod's cgroup is what bounds all sandboxes together")
	}
}

// TestManifestsWiring: the names the objects share agree, and every setting is one conductor knows
// and accepts.
func TestManifestsWiring(t *testing.T) {
	m := load(t)
	c := m.conductor(t)
	podLabels := m.deploy.Spec.Template.Labels
	matches := func(what string, sel map[string]string) {
		if len(sel) == 0 {
			t.Errorf("%s selects nothing", what)
		}
		for k, v := range sel {
			if podLabels[k] != v {
				t.Errorf("%s selects %s=%s; the pods have %v", what, k, v, podLabels)
			}
		}
	}
	matches("Deployment", m.deploy.Spec.Selector.MatchLabels)
	matches("Service", m.service.Spec.Selector)
	matches("PodDisruptionBudget", m.pdb.Spec.Selector.MatchLabels)
	matches("NetworkPolicy", m.netpol.Spec.PodSelector.MatchLabels)
	if r := m.hpa.Spec.ScaleTargetRef; r.Kind != "Deployment" || r.Name != m.deploy.Name {
		t.Errorf("HPA scales %s/%s, want Deployment/%s", r.Kind, r.Name, m.deploy.Name)
	}

	// The port: serve's --http address, the container port, the probes, the Service, the policy.
	port := map[string]int32{}
	for _, p := range c.Ports {
		port[p.Name] = p.ContainerPort
	}
	i := slices.Index(c.Args, "--http")
	if i < 0 || i+1 >= len(c.Args) || c.Args[0] != "serve" {
		t.Fatalf("args %q: want serve --http ADDR", c.Args)
	}
	host, p, err := net.SplitHostPort(c.Args[i+1])
	if err != nil || host != "0.0.0.0" || p != fmt.Sprint(port["mcp"]) {
		t.Errorf("--http %s: want 0.0.0.0:%d (the mcp port, reachable through the Service)", c.Args[i+1], port["mcp"])
	}
	named := func(what string, ip intstr.IntOrString) {
		if ip.Type != intstr.String || port[ip.StrVal] == 0 {
			t.Errorf("%s targets port %s; want a named port of the container (%v)", what, ip.String(), port)
		}
	}
	for _, sp := range m.service.Spec.Ports {
		named("Service port "+sp.Name, sp.TargetPort)
	}
	for _, r := range m.netpol.Spec.Ingress {
		for _, np := range r.Ports {
			named("NetworkPolicy ingress", *np.Port)
		}
	}
	for _, pr := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if pr == nil || pr.HTTPGet == nil {
			t.Fatalf("%s: want liveness, readiness and startup probes by HTTP GET", c.Name)
		}
		named("probe "+pr.HTTPGet.Path, pr.HTTPGet.Port)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("liveness %s, readiness %s; want /healthz and /readyz", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}

	// The settings: envFrom names the ConfigMap and the Secret; every key is a variable in config's
	// table; together they pass config.Load as serve would read them.
	var refs []string
	for _, e := range c.EnvFrom {
		switch {
		case e.ConfigMapRef != nil:
			refs = append(refs, "ConfigMap/"+e.ConfigMapRef.Name)
		case e.SecretRef != nil:
			refs = append(refs, "Secret/"+e.SecretRef.Name)
		}
	}
	if want := []string{"ConfigMap/" + m.config.Name, "Secret/" + m.secret.Name}; !slices.Equal(refs, want) {
		t.Errorf("envFrom %v, want %v", refs, want)
	}
	known := map[string]bool{}
	for _, v := range config.Variables() {
		known[v.Name] = true
	}
	env := map[string]string{}
	for k, v := range m.config.Data {
		env[k] = v
	}
	for k, v := range m.secret.StringData {
		env[k] = v
	}
	for k := range env {
		if !known[k] {
			t.Errorf("%s is not a conductor setting (closest: %s)", k, config.Suggest(k))
		}
	}
	if env[config.VarHTTPToken] == "" {
		t.Errorf("the Secret has no %s: every replica needs the same token", config.VarHTTPToken)
	}
	s, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("config.Load of the ConfigMap and Secret: %v", err)
	}
	if !s.HTTPStateless {
		t.Errorf("%s is off: a plain Service would send a session's requests to replicas that do not know it", config.VarHTTPStateless)
	}
	for _, dir := range []string{s.StateDir, s.DataDir} {
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.MountPath == dir }) {
			t.Errorf("%s is not a volume: the root filesystem is read-only", dir)
		}
	}
}

// TestManifestsProbesServed: the probe paths are served by the built conductor (a real `serve
// --http` with the ConfigMap's stateless setting), answering 200 once it is ready.
func TestManifestsProbesServed(t *testing.T) {
	m := load(t)
	c := m.conductor(t)
	bin := os.Getenv("CONDUCTOR_BIN")
	if bin == "" {
		bin = filepath.Join(testenv.RepoRoot(), "bin", "conductor")
	}
	if _, err := os.Stat(bin); err != nil {
		testenv.Unavailable(t, "the conductor binary (set CONDUCTOR_BIN or run `make build`): %v", err)
	}
	testenv.Deno(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--http", addr)
	cmd.Env = append(os.Environ(), "MCP_CONDUCTOR_STATE_DIR="+t.TempDir(), config.VarHTTPToken+"=probe-test-token-0123456789",
		config.VarHTTPStateless+"="+m.config.Data[config.VarHTTPStateless])
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for _, pr := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		url := "http://" + addr + pr.HTTPGet.Path
		last := ""
		ok := false
		for deadline := time.Now().Add(testenv.Scale(60 * time.Second)); !ok && time.Now().Before(deadline); {
			resp, err := http.Get(url)
			if err != nil {
				last = err.Error()
			} else {
				resp.Body.Close()
				last = resp.Status
				ok = resp.StatusCode == http.StatusOK
				if resp.StatusCode == http.StatusNotFound {
					break // not a path conductor serves; /readyz answers 503 until ready
				}
			}
			if !ok {
				time.Sleep(100 * time.Millisecond) // polling a server that is starting; nothing to wait on
			}
		}
		if !ok {
			t.Errorf("GET %s: %s, want 200\nstderr:\n%s", pr.HTTPGet.Path, last, strings.TrimSpace(stderr.String()))
		}
	}
	// A path conductor does not serve is not 200: the check above can fail.
	resp, err := http.Get("http://" + addr + "/no-such-probe")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("GET /no-such-probe answered 200: the probe check proves nothing")
		}
	}
}

func ptrString[T ~string](p *T) string {
	if p == nil {
		return "unset"
	}
	return string(*p)
}

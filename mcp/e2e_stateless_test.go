package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// roundRobin is a reverse proxy with no affinity: each request goes to the
// next backend in turn, as a plain Kubernetes Service may send it. It counts
// the tools/call POSTs each backend got.
type roundRobin struct {
	backends []*url.URL
	next     atomic.Uint64
	calls    []atomic.Int64
	proxy    *httputil.ReverseProxy
}

func newRoundRobin(t *testing.T, bases ...string) *roundRobin {
	t.Helper()
	rr := &roundRobin{calls: make([]atomic.Int64, len(bases))}
	for _, b := range bases {
		u, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		rr.backends = append(rr.backends, u)
	}
	rr.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			i := int(rr.next.Add(1)-1) % len(rr.backends)
			pr.SetURL(rr.backends[i])
			pr.Out.Host = rr.backends[i].Host // the replicas' DNS-rebinding check wants a loopback Host
			if b, ok := pr.In.Context().Value(bodyKey{}).([]byte); ok && bytes.Contains(b, []byte(`"tools/call"`)) {
				rr.calls[i].Add(1)
			}
		},
		FlushInterval: -1, // SSE answers pass at once
	}
	return rr
}

type bodyKey struct{}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, b))
	}
	rr.proxy.ServeHTTP(w, r)
}

// replicaAudit counts the execution lines a replica wrote to its stdout
// (MCP_CONDUCTOR_AUDIT=stdout), by status.
func replicaAudit(t *testing.T, s *httpServer) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(s.stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var l struct{ Type, Status, Session string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if l.Type == "execution" {
			n[l.Status]++
			if l.Session != "" {
				t.Errorf("stateless replica audited session %q, want none", l.Session)
			}
		}
	}
	return n
}

// TestE2EHTTPStatelessReplicas: two `serve --http` replicas with the same
// token and MCP_CONDUCTOR_HTTP_STATELESS=1 behind a round-robin proxy with no
// affinity. One go-sdk client session runs 10 executions through it: all
// succeed, each replica ran some (its own audit lines say so), progress
// notifications still reach the client (they travel on the POST's own
// stream), and what needs a session is off: GET /mcp is 405.
func TestE2EHTTPStatelessReplicas(t *testing.T) {
	env := []string{"MCP_CONDUCTOR_HTTP_STATELESS=1", "MCP_CONDUCTOR_AUDIT=stdout", "MCP_CONDUCTOR_POOL_SIZE=1"}
	a, b := startHTTP(t, env...), startHTTP(t, env...)
	rr := newRoundRobin(t, a.base, b.base)
	front := httptest.NewServer(rr)
	t.Cleanup(front.Close)

	var progressMu sync.Mutex
	var progress []string
	copts := &sdk.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
		progressMu.Lock()
		defer progressMu.Unlock()
		progress = append(progress, req.Params.Message)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(30*time.Second))
	defer cancel()
	cs, err := connectHTTP(ctx, front.URL+"/mcp", e2eToken, copts)
	if err != nil {
		t.Fatalf("connect through the proxy: %v\nreplica a:\n%s\nreplica b:\n%s", err, a.stderr, b.stderr)
	}
	t.Cleanup(func() { _ = cs.Close() })

	const runs = 10
	for i := range runs {
		r := run(t, cs, map[string]any{"deno_code": fmt.Sprintf("console.log('run %d'); %d * 2", i, i)})
		expectSuccess(t, r)
		if got, want := r.str("stdout"), fmt.Sprintf("run %d\n", i); got != want {
			t.Errorf("run %d: stdout %q, want %q", i, got, want)
		}
	}
	ca, cb := rr.calls[0].Load(), rr.calls[1].Load()
	if ca+cb != runs || ca == 0 || cb == 0 {
		t.Errorf("tools/call POSTs per replica: a %d, b %d; want %d in all, both > 0", ca, cb, runs)
	}
	// Every execution is in the audit log of the replica that ran it, and
	// only there: the replicas share nothing. The lines are written
	// asynchronously; wait for them.
	var la, lb map[string]int
	waitFor(testenv.Scale(10*time.Second), func() bool {
		la, lb = replicaAudit(t, a), replicaAudit(t, b)
		return la["success"]+lb["success"] >= runs
	})
	if la["success"] != int(ca) || lb["success"] != int(cb) {
		t.Errorf("audited successes: a %v, b %v; want %d and %d (the calls each replica got)", la, lb, ca, cb)
	}

	t.Run("progress", func(t *testing.T) {
		params := &sdk.CallToolParams{Name: toolName, Arguments: map[string]any{
			"deno_code": "for (let i = 0; i < 5; i++) { console.log('tick ' + i); await new Promise((r) => setTimeout(r, 600)); }",
		}}
		params.SetProgressToken("stateless-progress")
		res, err := cs.CallTool(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		expectSuccess(t, toResult(t, res))
		if !waitFor(2*time.Second, func() bool { progressMu.Lock(); defer progressMu.Unlock(); return len(progress) > 0 }) {
			t.Errorf("no progress notification during a 3 s run through a stateless replica")
		}
	})

	t.Run("no sessions", func(t *testing.T) {
		for _, s := range []*httpServer{a, b} {
			req, _ := http.NewRequest(http.MethodGet, s.url, nil)
			req.Header.Set("Authorization", "Bearer "+e2eToken)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("GET %s: %d, want 405 (no server-to-client stream without sessions)", s.url, resp.StatusCode)
			}
			code, hdr, _ := rawPost(t, s.url, map[string]string{"Authorization": "Bearer " + e2eToken})
			if code != http.StatusOK || hdr.Get("Mcp-Session-Id") != "" {
				t.Errorf("initialize on %s: %d, Mcp-Session-Id %q; want 200 and no session", s.url, code, hdr.Get("Mcp-Session-Id"))
			}
		}
	})
}

// TestE2EHTTPStatelessRefused: serve refuses MCP_CONDUCTOR_HTTP_STATELESS
// where it cannot be honoured, at start (exit 1), naming what is wrong, what
// is allowed and who changes it.
func TestE2EHTTPStatelessRefused(t *testing.T) {
	bin := conductorBin(t)
	denoBin(t)
	approvals := filepath.Join(t.TempDir(), "mcp.json")
	if err := os.WriteFile(approvals, []byte(`{"mcpServers":{"files":{"command":"/bin/true","requireApproval":true},`+
		`"plain":{"command":"/bin/true"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"stdio", nil, nil,
			[]string{"MCP_CONDUCTOR_HTTP_STATELESS", "only for serve --http", "admin"}},
		{"approvals", []string{"--http", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, []string{"MCP_CONDUCTOR_MCP_CONFIG=" + approvals, "MCP_CONDUCTOR_HTTP_TOKEN=" + e2eToken},
			[]string{"MCP_CONDUCTOR_HTTP_STATELESS", "upstream files", "require approval", "remove requireApproval", "admin"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(60*time.Second))
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append([]string{"serve"}, c.args...)...)
			cmd.Env = serverEnv(t.TempDir(), append([]string{"MCP_CONDUCTOR_HTTP_STATELESS=1"}, c.env...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Fatalf("serve exited %d (%v), want 1; stderr:\n%s", code, err, &stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, &stderr)
				}
			}
			if strings.Contains(stderr.String(), "upstream plain") {
				t.Errorf("stderr names the server without requireApproval:\n%s", &stderr)
			}
		})
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestExecNetwork runs the real binary as an admin would: allow-net names
// a loopback server the test started on the host; code reaches it with
// fetch, and the JSON result's network list records the connection. deno
// itself refuses another port with its own allow-net message. doctor
// prints the effective policy.
func TestExecNetwork(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "from the host")
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	env := []string{fmt.Sprintf("MCP_CONDUCTOR_RUN_ARGS=allow-net=127.0.0.1:%d,allow-env", port)}
	code := fmt.Sprintf(`const a = await (await fetch("http://127.0.0.1:%d/")).text();
let b = "";
try { await fetch("http://127.0.0.1:%d/"); } catch (e) { b = (e as Error).message; }
export default { a, b };`, port, port+1)
	out, errOut, exit := conductor(t, code, env, "exec", "--json", "-")
	if exit != 0 {
		t.Fatalf("exit %d; stdout %s; stderr %s", exit, out, errOut)
	}
	var res struct {
		ReturnValue struct{ A, B string } `json:"returnValue"`
		Network     []struct {
			Host     string `json:"host"`
			Port     int    `json:"port"`
			Allowed  bool   `json:"allowed"`
			BytesIn  int64  `json:"bytesIn"`
			BytesOut int64  `json:"bytesOut"`
		} `json:"network"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.ReturnValue.A != "from the host" {
		t.Errorf("fetch of the listed server = %q", res.ReturnValue.A)
	}
	if !strings.Contains(res.ReturnValue.B, "Requires net access") {
		t.Errorf("fetch of an unlisted port = %q, want deno's allow-net refusal", res.ReturnValue.B)
	}
	if len(res.Network) != 1 || res.Network[0].Host != "127.0.0.1" || res.Network[0].Port != port || !res.Network[0].Allowed || res.Network[0].BytesIn == 0 {
		t.Errorf("network = %+v, want the one allowed connection with bytes", res.Network)
	}
	if hits.Load() != 1 {
		t.Errorf("host server saw %d requests, want 1", hits.Load())
	}

	dout, _, _ := conductor(t, "", env, "doctor")
	for _, want := range []string{fmt.Sprintf("runs reach: 127.0.0.1:%d", port), "[ok  ] network proof    a sandbox reached 127.0.0.1:"} {
		if !strings.Contains(dout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, dout)
		}
	}
}

// TestExecFetchRefused: a fetch the door refuses (bare allow-net: any public address, and a
// loopback one is not) fails in exec's text and JSON with what was refused and why, deno's own
// text ("fetch failed" and a reset) as the JSON error's cause. Nothing is dialed.
func TestExecFetchRefused(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var hits atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	env := []string{"MCP_CONDUCTOR_RUN_ARGS=allow-net"}
	code := fmt.Sprintf(`await fetch("http://127.0.0.1:%d/")`, port)
	want := fmt.Sprintf("TypeError: fetch failed: the server's network policy refused 127.0.0.1:%d: a loopback, private, link-local, CGNAT or metadata address", port)

	_, errOut, exit := conductor(t, code, env, "exec", "-")
	if exit == 0 || !strings.Contains(errOut, "conductor: error (runtime): "+want) || !strings.Contains(errOut, "MCP_CONDUCTOR_NET_PRIVATE") {
		t.Errorf("exec: exit %d, stderr:\n%s\nwant %q", exit, errOut, want)
	}
	out, errOut, _ := conductor(t, code, env, "exec", "--json", "-")
	var res struct {
		Error struct{ Name, Message, Cause, Stack string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s\n%s", err, out, errOut)
	}
	if e := res.Error; !strings.HasPrefix(e.Name+": "+e.Message, want) ||
		!strings.HasPrefix(e.Cause, "fetch failed: ") || !strings.Contains(e.Cause, "Connection reset by peer") ||
		!strings.HasPrefix(e.Stack, "TypeError: fetch failed\n") {
		t.Errorf("exec --json error = %+v\nwant message %q..., deno's text as the cause", e, want)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback listener got %d connections", n)
	}
}

// TestAxiosThroughTheDoor: an npm SDK on node:http (axios, installed by
// `conductor deps install` from the npm registry) reaches the listed
// loopback server with no proxy settings or other cooperation.
func TestAxiosThroughTheDoor(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"agent":%q}`, r.URL.Path, r.UserAgent())
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	env := []string{"MCP_CONDUCTOR_ALLOWED_PACKAGES=npm:axios@^1",
		fmt.Sprintf("MCP_CONDUCTOR_RUN_ARGS=allow-net=127.0.0.1:%d,allow-env", port)}
	if out, errOut, code := conductor(t, "", env, "deps", "install"); code != 0 {
		t.Fatalf("deps install: exit %d\n%s\n%s", code, out, errOut)
	}
	prog := fmt.Sprintf(`import axios from "npm:axios";
const r = await axios.get("http://127.0.0.1:%d/sdk");
export default r.data;`, port)
	out, errOut, code := conductor(t, prog, env, "exec", "--json", "-")
	var res struct {
		Status      string `json:"status"`
		ReturnValue struct {
			Path, Agent string
		} `json:"returnValue"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
		t.Fatalf("exit %d: %v\n%s\n%s", code, err, out, errOut)
	}
	if res.ReturnValue.Path != "/sdk" || !strings.Contains(res.ReturnValue.Agent, "axios") {
		t.Errorf("axios got %+v, want /sdk with axios's user agent", res.ReturnValue)
	}
}

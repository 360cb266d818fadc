package runtimes

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/conductor-sandbox/conductor/internal/testenv"
)

// factoryDriver loads the client (PythonFactory) as the runner does, opens mcpFactory on fd 3 as
// the runner does before the user's code runs, makes calls and prints what they returned or raised as one JSON line.
const factoryDriver = `
import asyncio, json, sys
ns = {"__name__": "conductor_mcp"}
exec(json.loads(sys.argv[1]), ns)
f = ns["open_factory"]()
McpError = ns["McpError"]

async def main():
    if f is None:
        return None
    s = f.load("s")
    out = {"gather": await asyncio.gather(s.call_tool("a", {"n": 1}), s.callTool("b"), f.listServers())}
    try:
        await s.call_tool("big", {"x": "y" * 5000})
    except McpError as e:
        out["big"] = str(e)
    out["closed"] = []
    for _ in range(2):
        try:
            await s.read_resource("u://x")
            out["closed"].append("returned")
        except McpError as e:
            out["closed"].append(str(e))
    return out

print(json.dumps(asyncio.run(main())))
`

// startFactoryDriver runs factoryDriver with fd 3 one end of a socketpair, and returns the other
// end, on which the test plays the launcher's relay.
func startFactoryDriver(t *testing.T) (relay *os.File, output func() string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		testenv.Unavailable(t, "no python3 on PATH: %v", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	relay, child := os.NewFile(uintptr(fds[0]), "relay"), os.NewFile(uintptr(fds[1]), "runner")
	src, _ := json.Marshal(PythonFactory)
	cmd := exec.Command(py, "-E", "-s", "-B", "-c", factoryDriver, string(src))
	cmd.ExtraFiles = []*os.File{child}
	var stdout, stderr testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		relay.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return relay, func() string {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("driver: %v\nstderr: %s", err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("driver did not exit within 20 s\nstderr: %s", stderr.String())
		}
		done <- nil
		return strings.TrimSpace(stdout.String())
	}
}

// TestPythonFactoryClient: the runner's mcpFactory client against a relay the test plays, no
// sandbox: the three calls of asyncio.gather are all sent before any is answered (the relay
// waits for the third), replies in reverse order reach their own calls, lines about no call of
// the client's (not JSON, id null, an unknown id) are ignored, a request over the relay's
// maxLine is refused without being sent, and once the relay closes the channel (its last line
// saying why) the call in flight and every later call raise McpError with that reason.
func TestPythonFactoryClient(t *testing.T) {
	relay, output := startFactoryDriver(t)
	w := func(s string) {
		if _, err := relay.WriteString(s + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	w(`{"maxLine": 4096}`)
	_ = relay.SetReadDeadline(time.Now().Add(15 * time.Second))
	sc := bufio.NewScanner(relay)
	type request struct {
		ID     int             `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	next := func() request {
		if !sc.Scan() {
			t.Fatalf("the relay got no request: %v (calls not sent in parallel?)", sc.Err())
		}
		var r request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("request %q: %v", sc.Bytes(), err)
		}
		return r
	}
	var reqs []request
	for range 3 {
		reqs = append(reqs, next())
	}
	w(`not json`)
	w(`{"id": null, "error": {"message": "about a line of the code's"}}`)
	w(`{"id": 999, "result": "for no call"}`)
	w(`[1]`)
	for i := len(reqs) - 1; i >= 0; i-- {
		b, _ := json.Marshal(map[string]any{"id": reqs[i].ID, "result": map[string]any{"method": reqs[i].Method, "params": reqs[i].Params}})
		w(string(b))
	}
	last := next()
	if last.Method != "readResource" || string(last.Params) != `{"uri":"u://x","server":"s"}` {
		t.Errorf("after the refused big call, the relay got %s %s; want readResource of u://x", last.Method, last.Params)
	}
	w(`{"id": null, "closed": true, "error": {"message": "closing now"}}`)
	relay.Close()

	var got struct {
		Gather []struct {
			Method string
			Params map[string]any
		}
		Big    string
		Closed []string
	}
	out := output()
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("driver printed %q: %v", out, err)
	}
	want := []string{`callTool {"args":{"n":1},"server":"s","tool":"a"}`, `callTool {"args":{},"server":"s","tool":"b"}`, `listServers {}`}
	for i, g := range got.Gather {
		p, _ := json.Marshal(g.Params)
		if i >= len(want) || g.Method+" "+string(p) != want[i] {
			t.Errorf("gather[%d] = %s %s; want %s", i, g.Method, p, want[min(i, len(want)-1)])
		}
	}
	if len(got.Gather) != 3 {
		t.Errorf("gather returned %d values, want 3", len(got.Gather))
	}
	if !strings.Contains(got.Big, "over the 4096 bytes the channel takes; it was not sent") {
		t.Errorf("a request over maxLine: %q", got.Big)
	}
	if strings.Join(got.Closed, "|") != "closing now|closing now" {
		t.Errorf("calls when the relay closed: %q, want its reason twice", got.Closed)
	}
}

// TestPythonFactoryNoChannel: no mcpFactory when the launcher closed its end before saying
// anything (a server without upstreams), or when fd 3 is not there at all.
func TestPythonFactoryNoChannel(t *testing.T) {
	relay, output := startFactoryDriver(t)
	relay.Close()
	if out := output(); out != "null" {
		t.Errorf("with the relay's end closed: %q, want null (no mcpFactory)", out)
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		testenv.Unavailable(t, "no python3 on PATH: %v", err)
	}
	src, _ := json.Marshal(PythonFactory)
	out, err := exec.Command(py, "-E", "-s", "-B", "-c", factoryDriver, string(src)).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "null" {
		t.Errorf("without fd 3: %v %q, want null", err, out)
	}
}

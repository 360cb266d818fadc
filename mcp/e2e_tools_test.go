package mcp_test

// The official MCP tools from npm (installed by `make mcp-tools`, pinned in
// scripts/mcp-tools.sh) against the built binary: the inspector's CLI mode
// as a real client, and the conformance suite (run under deno: it wants
// Node >= 22).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// inspector runs `mcp-inspector --cli args…` and returns its stdout parsed
// as JSON.
func inspector(t *testing.T, args ...string) map[string]any {
	t.Helper()
	bin := filepath.Join(mcpTools(t), "node_modules", ".bin", "mcp-inspector")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--cli"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mcp-inspector --cli %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	var out map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("mcp-inspector output is not JSON: %v\n%s", err, stdout.String())
	}
	return out
}

// TestE2EInspector: the official inspector CLI lists and calls the tool, over
// stdio (it spawns `conductor serve`) and over streamable HTTP.
func TestE2EInspector(t *testing.T) {
	mcpTools(t)
	bin := conductorBin(t)
	denoBin(t)
	// The inspector gives the server it spawns only a minimal environment
	// plus -e pairs.
	state := t.TempDir()
	stdio := []string{"-e", "MCP_CONDUCTOR_STATE_DIR=" + state, bin, "serve"}

	t.Run("stdio tools/list", func(t *testing.T) {
		out := inspector(t, append(stdio, "--method", "tools/list")...)
		tools, _ := out["tools"].([]any)
		if len(tools) < 2 {
			t.Fatalf("tools/list: want run_deno_code and execute_code (and run_python_code with Python), got %v", out)
		}
		// Listed by name: execute_code, run_deno_code.
		tool, _ := tools[1].(map[string]any)
		if code, _ := tools[0].(map[string]any); code["name"] != "execute_code" || code["inputSchema"] == nil {
			t.Fatalf("tools/list: want execute_code first (by name), got %v", code)
		}
		if tool["name"] != toolName || tool["inputSchema"] == nil || tool["outputSchema"] == nil {
			t.Fatalf("tools/list: want %s with input and output schemas, got %v", toolName, tool)
		}
	})

	checkCall := func(t *testing.T, out map[string]any) {
		t.Helper()
		sc, _ := out["structuredContent"].(map[string]any)
		if out["isError"] == true || sc["status"] != "success" || sc["returnValue"] != float64(2) {
			t.Fatalf("tools/call deno_code='return 1+1': want success with returnValue 2, got %v", out)
		}
		content, _ := out["content"].([]any)
		first, _ := content[0].(map[string]any)
		if text, _ := first["text"].(string); !strings.Contains(text, "returnValue: 2") {
			t.Errorf("text content %q lacks the return value", text)
		}
	}
	t.Run("stdio tools/call", func(t *testing.T) {
		checkCall(t, inspector(t, append(stdio, "--method", "tools/call", "--tool-name", toolName, "--tool-arg", "deno_code=return 1+1")...))
	})
	t.Run("stdio tools/call with globals, timeout and dependencies", func(t *testing.T) {
		// The inspector converts each --tool-arg by the input schema's "type":
		// a number for timeout, JSON for an object or array.
		out := inspector(t, append(stdio, "--method", "tools/call", "--tool-name", toolName,
			"--tool-arg", "deno_code=return n * 2", `globals={"n": 21}`, "timeout=5000")...)
		sc, _ := out["structuredContent"].(map[string]any)
		if sc["returnValue"] != float64(42) {
			t.Errorf("globals and timeout through the inspector: want returnValue 42, got %v", out)
		}
		// dependencies must arrive as an array, to be refused by the allowlist
		// (no packages are allowed here), not by schema validation.
		out = inspector(t, append(stdio, "--method", "tools/call", "--tool-name", toolName,
			"--tool-arg", "deno_code=return 1", `dependencies=["npm:left-pad"]`)...)
		content, _ := out["content"].([]any)
		first, _ := content[0].(map[string]any)
		text, _ := first["text"].(string)
		if out["isError"] != true || !strings.Contains(text, "npm:left-pad") || strings.Contains(text, "validating") {
			t.Errorf("dependencies through the inspector: want the allowlist's refusal naming npm:left-pad, got %q "+
				"(an inputSchema type of [\"null\",\"array\"] makes the inspector send the array as a string)", text)
		}
	})
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("state dir not empty after the inspector's servers exited: %d entries", len(entries))
	}

	t.Run("http tools/call", func(t *testing.T) {
		// The inspector CLI sends no token: serve without one, on loopback.
		s := startHTTP(t, "MCP_CONDUCTOR_HTTP_INSECURE_NO_AUTH=1")
		checkCall(t, inspector(t, s.url, "--transport", "http", "--method", "tools/call", "--tool-name", toolName, "--tool-arg", "deno_code=return 1+1"))
	})
}

// conformanceScenario is one server scenario of @modelcontextprotocol/conformance
// and whether conductor should pass it. docs/conformance.md holds the same table.
type conformanceScenario struct {
	name   string
	na     string // why it does not apply; "" = applicable, must pass
	covers string // for N/A: the e2e test covering conductor's equivalent, if any
}

const (
	naFixtureTool = "calls a fixture tool of the reference server (%s); conductor's only tool is run_deno_code"
	naNoResources = "reads the reference server's fixture resources; conductor's resources are its playbooks and run outputs (resources-list passes with an empty list)"
	naNoPrompts   = "conductor offers no prompts (prompts-list passes with an empty list)"
	naElicitation = "needs a tool that asks the client for elicitation (%s); conductor never elicits"
)

// conformanceScenarios: every server scenario of conformance 0.1.16, in its
// `list` order.
var conformanceScenarios = []conformanceScenario{
	{name: "server-initialize"},
	{name: "logging-set-level"},
	{name: "ping"},
	{name: "completion-complete", na: "conductor offers no completions; it answers completion/complete with -32601 method not found"},
	{name: "tools-list"},
	{name: "tools-call-simple-text", na: fmt.Sprintf(naFixtureTool, "test_simple_text"), covers: "TestE2EStdio/success (text and structured content)"},
	{name: "tools-call-image", na: fmt.Sprintf(naFixtureTool, "test_image_content"), covers: "TestE2EOutputs, TestE2EOutputsMatplotlib (a run's images as image content)"},
	{name: "tools-call-audio", na: fmt.Sprintf(naFixtureTool, "test_audio_content") + "; its results hold no audio"},
	{name: "tools-call-embedded-resource", na: fmt.Sprintf(naFixtureTool, "test_embedded_resource"), covers: "TestOutputContent (a run's small text files as embedded resources)"},
	{name: "tools-call-mixed-content", na: fmt.Sprintf(naFixtureTool, "test_multiple_content_types"), covers: "TestE2EOutputs (text, image and resource_link in one result)"},
	{name: "tools-call-with-logging", na: fmt.Sprintf(naFixtureTool, "test_tool_with_logging") + "; it sends no log notifications during a call (logging is deprecated by SEP-2577)"},
	{name: "tools-call-error", na: fmt.Sprintf(naFixtureTool, "test_error_handling"), covers: "TestE2EStdio/runtime_error, TestE2EStdioBadInput (isError results)"},
	{name: "tools-call-with-progress", na: fmt.Sprintf(naFixtureTool, "test_tool_with_progress"), covers: "TestE2EProgress"},
	{name: "tools-call-sampling", na: fmt.Sprintf(naFixtureTool, "test_sampling") + "; conductor never asks the client for sampling"},
	{name: "tools-call-elicitation", na: fmt.Sprintf(naElicitation, "test_elicitation")},
	{name: "json-schema-2020-12", na: fmt.Sprintf(naFixtureTool, "json_schema_2020_12_tool, with $schema and $defs in its input schema"), covers: "tools-list, TestE2EStdio/tools/list (schemas arrive intact and parse in the TypeScript SDK)"},
	{name: "elicitation-sep1034-defaults", na: fmt.Sprintf(naElicitation, "test_elicitation_sep1034_defaults")},
	{name: "server-sse-polling"},
	{name: "server-sse-multiple-streams"},
	{name: "elicitation-sep1330-enums", na: fmt.Sprintf(naElicitation, "test_elicitation_sep1330_enums")},
	{name: "resources-list"},
	{name: "resources-read-text", na: naNoResources},
	{name: "resources-read-binary", na: naNoResources},
	{name: "resources-templates-read", na: naNoResources, covers: "TestE2EOutputs, TestE2EOutputsIdentities (resources/read of conductor://outputs/… and conductor://workspace/…)"},
	{name: "resources-subscribe", na: naNoResources + "; resources/subscribe is -32601"},
	{name: "resources-unsubscribe", na: naNoResources + "; resources/subscribe is -32601"},
	{name: "prompts-list"},
	{name: "prompts-get-simple", na: naNoPrompts},
	{name: "prompts-get-with-args", na: naNoPrompts},
	{name: "prompts-get-embedded-resource", na: naNoPrompts},
	{name: "prompts-get-with-image", na: naNoPrompts},
	{name: "dns-rebinding-protection"},
}

// conformanceCheck is one entry of a scenario's checks.json.
type conformanceCheck struct {
	ID           string `json:"id"`
	Status       string `json:"status"` // SUCCESS, FAILURE, WARNING, INFO, …
	ErrorMessage string `json:"errorMessage"`
}

// TestE2EConformance runs every server scenario of the official conformance
// suite against `conductor serve --http` and requires every applicable one
// to pass.
func TestE2EConformance(t *testing.T) {
	tools := mcpTools(t)
	deno := denoBin(t)
	conformance := filepath.Join(tools, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
	if _, err := os.Stat(conformance); err != nil {
		t.Fatalf("conformance suite missing (run `make mcp-tools`): %v", err)
	}
	denoDir := t.TempDir()
	runConformance := func(ctx context.Context, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, deno, append([]string{"run", "-A", conformance}, args...)...)
		cmd.Dir = tools
		cmd.Env = append(os.Environ(), "DENO_DIR="+denoDir, "NO_COLOR=1", "DENO_NO_UPDATE_CHECK=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// The suite's own list of server scenarios must match the table.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	listOut, err := runConformance(ctx, "list")
	if err != nil {
		t.Fatalf("conformance list: %v\n%s", err, listOut)
	}
	listed := serverScenarios(listOut)
	var known []string
	for _, s := range conformanceScenarios {
		known = append(known, s.name)
	}
	if !slices.Equal(sorted(listed), sorted(known)) {
		t.Fatalf("the suite's server scenarios changed; update conformanceScenarios and docs/conformance.md:\nsuite: %v\ntable: %v", listed, known)
	}

	// Run them all (including the pending suite) against a live server.
	// The suite sends no token: serve without one, on loopback. Its
	// scenarios open ~30 sessions and close none: raise the session cap.
	s := startHTTP(t, "MCP_CONDUCTOR_HTTP_INSECURE_NO_AUTH=1", "MCP_CONDUCTOR_HTTP_MAX_SESSIONS=100")
	outDir := t.TempDir()
	ctx, cancel = context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	runOut, err := runConformance(ctx, "server", "--url", s.url, "--suite", "all", "-o", outDir)
	t.Logf("conformance server --suite all: exit %v", err)
	if ctx.Err() != nil {
		t.Fatalf("conformance suite did not finish in 120 s:\n%s", runOut)
	}
	results := readConformanceResults(t, outDir)

	doc := readConformanceDoc(t)
	for _, sc := range conformanceScenarios {
		checks, ran := results[sc.name]
		var failed, warned []string
		for _, c := range checks {
			switch c.Status {
			case "FAILURE":
				failed = append(failed, fmt.Sprintf("%s: %s", c.ID, c.ErrorMessage))
			case "WARNING":
				warned = append(warned, fmt.Sprintf("%s: %s", c.ID, c.ErrorMessage))
			}
		}
		passed := ran && len(checks) > 0 && len(failed) == 0
		switch {
		case sc.na != "":
			covered := ""
			if sc.covers != "" {
				covered = "; covered by " + sc.covers
			}
			t.Logf("N/A  %s (passed=%v): %s%s", sc.name, passed, sc.na, covered)
		case !ran:
			t.Errorf("scenario %s: no results in %s", sc.name, outDir)
		case !passed:
			t.Errorf("scenario %s FAILS:\n  %s", sc.name, strings.Join(failed, "\n  "))
		default:
			t.Logf("pass %s", sc.name)
		}
		for _, w := range warned {
			t.Logf("     %s warning: %s", sc.name, w)
		}
		want := "pass"
		if sc.na != "" {
			want = "N/A"
		}
		if got, ok := doc[sc.name]; !ok {
			t.Errorf("docs/conformance.md has no row for %s", sc.name)
		} else if got != want {
			t.Errorf("docs/conformance.md says %s is %q, the test says %q", sc.name, got, want)
		}
	}
	if t.Failed() {
		t.Logf("conformance output:\n%s", runOut)
	}
}

// serverScenarios parses the "Server scenarios" section of `conformance list`.
func serverScenarios(out string) []string {
	var names []string
	in := false
	item := regexp.MustCompile(`^\s*-\s+(\S+)`)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Server scenarios"):
			in = true
		case strings.HasPrefix(line, "Client scenarios"):
			in = false
		case in:
			if m := item.FindStringSubmatch(line); m != nil {
				names = append(names, m[1])
			}
		}
	}
	return names
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// readConformanceResults reads outDir/server-<scenario>-<timestamp>/checks.json.
func readConformanceResults(t *testing.T, outDir string) map[string][]conformanceCheck {
	t.Helper()
	dirName := regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T[0-9-]+Z$`)
	entries, err := os.ReadDir(outDir)
	if err != nil {
		t.Fatal(err)
	}
	results := map[string][]conformanceCheck{}
	for _, e := range entries {
		m := dirName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(outDir, e.Name(), "checks.json"))
		if err != nil {
			t.Errorf("scenario %s: %v", m[1], err)
			continue
		}
		var checks []conformanceCheck
		if err := json.Unmarshal(b, &checks); err != nil {
			t.Errorf("scenario %s: checks.json: %v", m[1], err)
			continue
		}
		results[m[1]] = checks
	}
	return results
}

// readConformanceDoc reads the scenario → result column of the table in
// docs/conformance.md.
func readConformanceDoc(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../docs/conformance.md")
	if err != nil {
		t.Fatalf("docs/conformance.md: %v", err)
	}
	row := regexp.MustCompile("^\\|\\s*`?([a-z0-9-]+)`?\\s*\\|\\s*([^|]+?)\\s*\\|")
	doc := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			doc[m[1]] = m[2]
		}
	}
	return doc
}

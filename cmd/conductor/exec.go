package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/conductor-sandbox/conductor/engine"
	"github.com/conductor-sandbox/conductor/sandbox"
)

func cmdExec(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	timeoutMs := fs.Int64("timeout", 0, "timeout in milliseconds (default MCP_CONDUCTOR_DEFAULT_TIMEOUT, at most MCP_CONDUCTOR_MAX_TIMEOUT)")
	language := fs.String("language", "", "run as execute_code in this language (python, go, javascript, typescript; default: from FILE's extension for .py and .go, else run_deno_code)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: conductor exec [--json] [--timeout MS] [--language L] FILE|- [MORE_FILES...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return 2
	}
	log := newLogger(slog.LevelWarn)
	code, err := readCode(fs.Arg(0), stdin)
	if err != nil {
		fmt.Fprintln(stderr, "conductor exec:", err)
		return 2
	}
	a, err := newApp(ctx, log)
	if err != nil {
		fmt.Fprintln(stderr, "conductor exec:", err)
		return 1
	}
	defer a.Close()
	for _, p := range a.allow.Packages() {
		if !a.view.Installed(p) {
			log.Warn("package not installed in this allowlist's cache view; code importing it will fail (run `conductor deps install`)", "package", p.Specifier())
		}
	}
	timeout := time.Duration(*timeoutMs) * time.Millisecond
	if *timeoutMs < 0 || timeout > a.settings.MaxTimeout {
		fmt.Fprintf(stderr, "conductor exec: --timeout %d: must be between 1 and %d ms (MCP_CONDUCTOR_MAX_TIMEOUT)\n", *timeoutMs, a.settings.MaxTimeout.Milliseconds())
		return 2
	}
	var res *engine.Result
	if lang := execLanguage(a, *language, fs.Arg(0)); lang != "" {
		req := engine.CodeRequest{Language: lang, Entrypoint: engine.File{Content: code}, Timeout: timeout}
		if fs.Arg(0) != "-" {
			req.Entrypoint.Name = filepath.Base(fs.Arg(0))
		}
		for _, name := range fs.Args()[1:] {
			f, err := readFile(name)
			if err != nil {
				fmt.Fprintln(stderr, "conductor exec:", err)
				return 2
			}
			req.Files = append(req.Files, f)
		}
		res, err = a.engine.ExecuteCode(ctx, req)
	} else if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "conductor exec: more files (%s) are for execute_code's languages: give --language\n", strings.Join(fs.Args()[1:], " "))
		return 2
	} else {
		res, err = a.engine.Execute(ctx, engine.Request{Code: code, Timeout: timeout})
	}
	exit := 0
	if err != nil {
		// Refused before it ran: the message on stderr, and with --json the result too,
		// its error.type saying why (engine.Refusal).
		fmt.Fprintln(stderr, "conductor exec:", err)
		exit = 1
		if errors.Is(err, engine.ErrInvalidRequest) || errors.Is(err, engine.ErrDependency) || errors.Is(err, engine.ErrLanguage) {
			exit = 2
		}
		if !*asJSON {
			return exit
		}
		res = engine.Refusal(err)
	} else if res.Status != sandbox.StatusSuccess {
		exit = 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "conductor exec:", err)
			return 1
		}
	} else {
		printHuman(res.Result, stdout, stderr)
	}
	return exit
}

// readCode reads the program from FILE or stdin ("-").
func readCode(name string, stdin io.Reader) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// execLanguage is the execute_code language exec runs FILE in: --language,
// else the language of FILE's extension when deno does not run it (a .py or
// .go file); "" runs it as run_deno_code.
func execLanguage(a *app, flag, file string) string {
	if flag != "" || file == "-" {
		return flag
	}
	l, ok := a.runtimes.ByExtension(filepath.Ext(file))
	if !ok || l.Name == "javascript" || l.Name == "typescript" {
		return ""
	}
	return l.Name
}

// readFile reads one more file of an execute_code run: named by its path
// when that is relative (the engine checks it against the working
// directory's rules), by its base name when absolute.
func readFile(name string) (engine.File, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return engine.File{}, err
	}
	if filepath.IsAbs(name) {
		name = filepath.Base(name)
	}
	return engine.File{Name: name, Content: string(b)}, nil
}

// printHuman writes the program's own output unchanged, then its return value (unless undefined:
// there is none) as JSON on a line of its own on stdout, then a status line on stderr when it did
// not succeed.
func printHuman(res *sandbox.Result, stdout, stderr io.Writer) {
	io.WriteString(stdout, res.Stdout)
	if v := res.ReturnValue; len(v) > 0 && string(v) != sandbox.UndefinedJSON {
		if res.Stdout != "" && !strings.HasSuffix(res.Stdout, "\n") {
			io.WriteString(stdout, "\n")
		}
		fmt.Fprintf(stdout, "%s\n", v)
		if res.ReturnTruncated {
			fmt.Fprintln(stderr, "conductor: the return value was cut at the result limit; parts of it are {\"$type\":\"truncated\"}")
		}
	}
	io.WriteString(stderr, res.Stderr)
	if res.StdoutTruncated || res.StderrTruncated {
		fmt.Fprintf(stderr, "conductor: output truncated (stdout %d bytes, stderr %d bytes in all)\n", res.StdoutBytes, res.StderrBytes)
	}
	if len(res.Degraded) > 0 {
		fmt.Fprintf(stderr, "conductor: DEGRADED: %s\n", strings.Join(res.Degraded, "; "))
	}
	for _, n := range res.Network {
		if !n.Allowed {
			fmt.Fprintf(stderr, "conductor: network refused: %s:%d: %s\n", n.Host, n.Port, n.Reason)
		}
	}
	if e := res.Error; res.Status != sandbox.StatusSuccess && e != nil {
		msg := e.Message
		if e.Name != "" && !strings.HasPrefix(msg, e.Name+":") {
			msg = e.Name + ": " + msg
		}
		// The stack's frames; its first line is deno's message, before conductor's words.
		if _, frames, ok := strings.Cut(e.Stack, "\n    at "); ok {
			msg += "\n    at " + frames
		}
		fmt.Fprintf(stderr, "conductor: %s (%s): %s\n", res.Status, e.Type, msg)
	}
}

// Command conductor runs AI-written TypeScript/JavaScript in Deno inside a
// hardened Linux sandbox.
//
//	conductor serve [--http ADDR]                  the MCP server
//	conductor exec [--json] [--timeout MS] [--language L] FILE|- [FILES...]   run one execution
//	conductor doctor [--json]                      what this host enforces
//	conductor rootfs build                         build the sandbox root
//	conductor version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/conductor-sandbox/conductor/sandbox"
)

// version is set by the Makefile.
var version = "dev"

// init turns the re-executed binary into a container's init (see
// sandbox.MaybeInit); in every other case it returns at once.
func init() { sandbox.MaybeInit() }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `conductor runs AI-written TypeScript/JavaScript in Deno inside a hardened Linux sandbox.

Usage:
  conductor serve [--http ADDR]                  the MCP server (stdio, or streamable HTTP at ADDR/mcp)
  conductor exec [--json] [--timeout MS] [--language L] FILE|- [FILES...]
                                                 run code once and print the result (TypeScript as run_deno_code;
                                                 --language, .py or .go: execute_code, FILES its other files)
  conductor doctor [--json]                      report what this host can enforce
  conductor deps install [--force]               fetch the allowed packages into this allowlist's cache view
  conductor deps status|prune                    show the cache view in use; remove views no server uses
  conductor identity hash < TOKEN-FILE           print the token's "token_sha256" for an identity in the config file
  conductor rootfs build                         build (or refresh) the sandbox root filesystem
  conductor version                              print the version

Admin settings come from MCP_CONDUCTOR_* environment variables (see README).
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stderr)
	case "exec":
		return cmdExec(ctx, args[1:], stdin, stdout, stderr)
	case "doctor":
		return cmdDoctor(ctx, args[1:], stdout, stderr)
	case "deps":
		return cmdDeps(ctx, args[1:], stdout, stderr)
	case "rootfs":
		return cmdRootfs(ctx, args[1:], stdout, stderr)
	case "identity":
		return cmdIdentity(args[1:], stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "conductor", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "conductor: unknown command %q\n\n%s", args[0], usage)
	return 2
}

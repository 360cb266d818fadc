// Package playbook is the admin's directory of playbooks: saved, reusable
// TypeScript that code run by run_deno_code calls with arguments
// (`await playbooks.run("name", args)`), and that MCP clients list, read and
// (when the admin allows it) save.
//
// # Files
//
// A playbook is a file NAME.ts in the directory (MCP_CONDUCTOR_PLAYBOOKS),
// NAME matching [a-z0-9][a-z0-9_-]{0,63}, at most MaxBytes, valid UTF-8. It
// begins with its front-matter, a comment holding one JSON object:
//
//	/* ---
//	{"name": "sum", "description": "Adds a and b.",
//	 "inputs": {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]}}
//	--- */
//	args.a + (args.b ?? 0)
//
// The first line is exactly `/* ---`, the last line of the block exactly
// `--- */`. Keys: name (required, the file's base name), description
// (required, at most MaxDescription bytes), inputs (optional: a JSON Schema
// of the arguments; its type, when given, is "object"). Unknown keys, a
// second object or anything after it are refused, and so is "*/" in the
// block (a JSON string writes it "*\/"). Parse is strict and fuzzed; its
// errors name the file and the field.
//
// The rest of the file is the playbook's code, run like run_deno_code's: the
// value of its last top-level expression, or of a top-level return, is what
// playbooks.run resolves to. Its arguments are the constant `args`, checked
// against inputs on the host before it runs. The whole file is the module, so
// positions in a playbook's errors are the file's own lines.
//
// # The directory
//
// Dir re-reads the directory when it or a file in it changed (textdir.Stamp,
// as snippets do). A bad file is skipped and reported (Dir.Problems, the
// log, `conductor doctor`); it never stops the others. Saving writes a
// temporary file in the directory and renames it over (or, without
// overwrite, links it to) the final name, so a reader sees the old file or
// the new one, never half of one.
//
// # Running
//
// Calls answers the in-sandbox `playbooks` global over the host-call channel
// (sandbox.CallHandler): "playbooks.list", "playbooks.run" (validates the
// arguments, returns the module to import), "playbooks.map" (maps positions
// in a playbook's error back to its file). Every parameter comes from
// untrusted code.
package playbook

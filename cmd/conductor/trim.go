package main

// #include <malloc.h>
import "C"

import "runtime/debug"

// releaseMemory hands freed memory back to the operating system: the Go
// heap's, and the C heap's (tree-sitter parses code with malloc).
func releaseMemory() {
	debug.FreeOSMemory()
	C.malloc_trim(0)
}

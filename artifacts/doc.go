// Package artifacts keeps the outputs of runs for resources/read, per identity, for a time
// (retention) and a size (per identity, the oldest removed first), then removes them.
//
// Stored outputs are files under the store's directory (conductor's state directory), one 0700
// directory per identity, each file named by a random 128-bit id; an output is addressed as
// conductor://outputs/<id>/<name> and read back only by the identity that produced it. A
// workspace reference (conductor://workspace/<path>) is no copy: the store remembers that the
// identity's run named the file and reads it from the identity's workspace when asked
// (ReadBeneath: no link followed, regular files only, size-capped). Nothing survives a restart:
// each process has a directory of its own under the store's, and Open removes those of
// processes that are gone.
package artifacts

//go:build !cgo

package egress

// haveHelper: without cgo there is no constructor to join namespaces, so
// a rootless StartDoor fails with the original setns error plus a note
// that the door helper needs a cgo build.
const haveHelper = false

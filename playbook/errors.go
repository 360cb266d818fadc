package playbook

import "errors"

// Sentinel errors callers branch on; each is wrapped with the details.
var (
	// ErrNotFound: no playbook of that name.
	ErrNotFound = errors.New("no such playbook")
	// ErrInvalid: a playbook file, a name, a front-matter or a save request is malformed.
	ErrInvalid = errors.New("invalid playbook")
	// ErrExists: save without overwrite of a name already taken.
	ErrExists = errors.New("playbook exists")
	// ErrReadOnly: save on a directory the admin did not make writable.
	ErrReadOnly = errors.New("playbooks are read-only")
	// ErrArgs: arguments that do not match a playbook's inputs.
	ErrArgs = errors.New("invalid playbook arguments")
)

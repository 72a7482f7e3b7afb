// Package component forwards to the component side of the control
// protocol, which is in package proto (proto/component.go): apps reach it
// there without importing anything but proto and ring. It remains only for
// its last importers (the supervisor and netproc's main); once they call
// proto directly it goes.
//
// Deprecated: use the same names in package proto.
package component

import (
	"os"

	"saturn/proto"
)

// DefaultStateDir is proto.DefaultStateDir.
func DefaultStateDir() string { return proto.DefaultStateDir() }

// Persist is proto.PersistFromEnv.
func Persist() (*os.File, error) { return proto.PersistFromEnv() }

// NotDumpable is proto.NotDumpable.
func NotDumpable() error { return proto.NotDumpable() }

//go:build tools

// Pins the gqlgen generator to the version in go.mod.
package tools

import _ "github.com/99designs/gqlgen"

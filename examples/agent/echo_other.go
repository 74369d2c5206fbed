//go:build !linux

package main

import "io"

// noEcho leaves the terminal as it is: outside Linux the password is read
// with echo (use --password-file to avoid it).
func noEcho(io.Reader) func() { return func() {} }

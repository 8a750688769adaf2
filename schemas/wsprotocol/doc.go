// Package wsprotocol holds the WebSocket client protocol: protocol.md (the
// document) and protocol.schema.json (its JSON Schema), embedded here so the
// gateway and tests validate frames against the same file users read.
package wsprotocol

import _ "embed"

// Schema is protocol.schema.json.
//
//go:embed protocol.schema.json
var Schema []byte

// Document is protocol.md.
//
//go:embed protocol.md
var Document string

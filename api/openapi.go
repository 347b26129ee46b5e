package api

import _ "embed"

// openapiJSON is the OpenAPI 3 document of the API, served at
// GET /api/v1/openapi.json.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the API's OpenAPI 3 document.
func OpenAPI() []byte { return append([]byte(nil), openapiJSON...) }

package schemas

import (
	"embed"
	"fmt"
)

//go:embed jsonschema/*.schema.json
var jsonSchemaFS embed.FS

// JSONSchema returns the JSON Schema of a contract message: license, rig,
// meter, reading, purchase, alert or reject.
func JSONSchema(name string) ([]byte, error) {
	b, err := jsonSchemaFS.ReadFile("jsonschema/" + name + ".schema.json")
	if err != nil {
		return nil, fmt.Errorf("no JSON Schema named %q", name)
	}
	return b, nil
}

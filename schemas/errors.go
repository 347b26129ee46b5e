package schemas

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error that rejects an input record.
var ErrInvalid = errors.New("invalid record")

// FieldError says which field of a record broke which rule. Field is empty
// when the record as a whole is at fault (bad JSON, too large, not UTF-8).
type FieldError struct {
	Field  string
	Rule   string // short class of the broken rule, e.g. "missing", "type", "range"
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap lets errors.Is(err, ErrInvalid) hold for every FieldError.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Rules: the short classes of broken rules, for counting rejects.
const (
	RuleMissing  = "missing"
	RuleType     = "type"
	RuleFormat   = "format"
	RuleRange    = "range"
	RuleFinite   = "not_finite"
	RuleEnum     = "enum"
	RuleSize     = "size"
	RuleEncoding = "encoding"
	RuleSyntax   = "syntax"
)

func fieldErr(field, rule, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// RuleOf returns the rule class of err ("invalid" when it names none).
func RuleOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) && fe.Rule != "" {
		return fe.Rule
	}
	return "invalid"
}

// FieldOf returns the field named by err, or "" when it names none.
func FieldOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

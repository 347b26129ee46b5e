package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"
)

// API roles, each allowed everything the one before it is.
const (
	RoleOperator     = "operator"
	RoleInvestigator = "investigator"
	RoleAdmin        = "admin"
)

// Roles lists the API roles from least to most allowed.
var Roles = []string{RoleOperator, RoleInvestigator, RoleAdmin}

// RoleRank orders roles: 1 operator, 2 investigator, 3 admin, 0 unknown.
func RoleRank(role string) int {
	for i, r := range Roles {
		if r == role {
			return i + 1
		}
	}
	return 0
}

// ErrTokenExists: a live token already has that name.
var ErrTokenExists = errors.New("a token with that name exists")

// TokenPrefix starts every token rigwatch issues, so a leaked one is
// recognisable in code and logs scanners.
const TokenPrefix = "rwt_"

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// ValidTokenName reports whether name may name a token.
func ValidTokenName(name string) bool { return tokenNameRE.MatchString(name) }

// Token describes an API token. The token itself is never stored.
type Token struct {
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	CreatedAt time.Time  `json:"created_at"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// HashToken returns the hex SHA-256 of a token: what api_tokens stores.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// NewTokenSecret returns a fresh random token: TokenPrefix and 32 random
// bytes in hex.
func NewTokenSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cannot draw a random token: %w", err)
	}
	return TokenPrefix + hex.EncodeToString(b), nil
}

type tokenRow struct {
	Token
	hash    string
	version uint64
}

func (s *Store) tokenRows(ctx context.Context, where string, args ...any) ([]tokenRow, error) {
	q := "SELECT name, token_sha256, role, created_at, revoked, revoked_at, version FROM " + s.db + ".api_tokens FINAL"
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := s.conn.Query(ctx, q+" ORDER BY name", args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read api tokens: %w", err)
	}
	defer rows.Close()
	var out []tokenRow
	for rows.Next() {
		var t tokenRow
		var rev uint8
		var revAt time.Time
		if err := rows.Scan(&t.Name, &t.hash, &t.Role, &t.CreatedAt, &rev, &revAt, &t.version); err != nil {
			return nil, fmt.Errorf("cannot read api tokens: %w", err)
		}
		t.CreatedAt, t.Revoked = t.CreatedAt.UTC(), rev != 0
		if t.Revoked {
			ra := revAt.UTC()
			t.RevokedAt = &ra
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *Store) writeToken(ctx context.Context, t tokenRow) error {
	var revAt time.Time
	if t.RevokedAt != nil {
		revAt = *t.RevokedAt
	} else {
		revAt = time.Unix(0, 0).UTC()
	}
	return s.insert(ctx, "api_tokens", "name, token_sha256, role, created_at, revoked, revoked_at, version", 1, func(int) []any {
		return []any{t.Name, t.hash, t.Role, t.CreatedAt, boolU8(t.Revoked), revAt, t.version}
	})
}

var tokenMu sync.Mutex

// CreateToken issues a token with a role and returns it: the only time it
// is visible. Only its SHA-256 is stored. A name already held by a live
// token is ErrTokenExists; a revoked token's name may be reused.
func (s *Store) CreateToken(ctx context.Context, name, role string) (string, Token, error) {
	if !ValidTokenName(name) {
		return "", Token{}, fmt.Errorf("token name %q: want 1-64 letters, digits or _.@-", name)
	}
	if RoleRank(role) == 0 {
		return "", Token{}, fmt.Errorf("unknown role %q (want operator, investigator or admin)", role)
	}
	tokenMu.Lock()
	defer tokenMu.Unlock()
	cur, err := s.tokenRows(ctx, "name = ?", name)
	if err != nil {
		return "", Token{}, err
	}
	var floor uint64
	if len(cur) > 0 {
		if !cur[0].Revoked {
			return "", Token{}, fmt.Errorf("token %q: %w", name, ErrTokenExists)
		}
		floor = cur[0].version
	}
	secret, err := NewTokenSecret()
	if err != nil {
		return "", Token{}, err
	}
	t := tokenRow{Token: Token{Name: name, Role: role, CreatedAt: time.Now().UTC().Truncate(time.Second)}, hash: HashToken(secret), version: nextVersion(floor)}
	if err := s.writeToken(ctx, t); err != nil {
		return "", Token{}, fmt.Errorf("cannot store token %q: %w", name, err)
	}
	return secret, t.Token, nil
}

// ListTokens returns every token, live and revoked, by name.
func (s *Store) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.tokenRows(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]Token, len(rows))
	for i := range rows {
		out[i] = rows[i].Token
	}
	return out, nil
}

// RevokeToken revokes the named token at once; an unknown name is
// ErrNotFound. Revoking twice is harmless.
func (s *Store) RevokeToken(ctx context.Context, name string) (Token, error) {
	tokenMu.Lock()
	defer tokenMu.Unlock()
	cur, err := s.tokenRows(ctx, "name = ?", name)
	if err != nil {
		return Token{}, err
	}
	if len(cur) == 0 {
		return Token{}, fmt.Errorf("token %q: %w", name, ErrNotFound)
	}
	t := cur[0]
	if t.Revoked {
		return t.Token, nil
	}
	now := time.Now().UTC().Truncate(time.Second)
	t.Revoked, t.RevokedAt, t.version = true, &now, nextVersion(t.version)
	if err := s.writeToken(ctx, t); err != nil {
		return Token{}, fmt.Errorf("cannot revoke token %q: %w", name, err)
	}
	return t.Token, nil
}

// LookupToken returns the live token whose secret is given, or an error
// wrapping ErrNotFound. Only the secret's hash reaches ClickHouse.
func (s *Store) LookupToken(ctx context.Context, secret string) (Token, error) {
	rows, err := s.tokenRows(ctx, "token_sha256 = ?", HashToken(secret))
	if err != nil {
		return Token{}, err
	}
	for _, t := range rows {
		if !t.Revoked {
			return t.Token, nil
		}
	}
	return Token{}, fmt.Errorf("token: %w", ErrNotFound)
}

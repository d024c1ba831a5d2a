package wire

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

// validTokenSlow is the definition ValidToken implements, rune by rune.
func validTokenSlow(tok string) bool {
	if tok == "" || !utf8.ValidString(tok) {
		return false
	}
	for _, r := range tok {
		if r == '*' || r == '>' || r == '.' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func TestValidToken(t *testing.T) {
	tokens := []string{"", "order", "order-42", "a.b", "*", ">", "a*", "caf\u00e9", "a b", "a\tb", "\x7f", "a\u0085", "a\u00a0b", "a\u2028", "\xff", "a\xc3", "日本"}
	for r := rune(0); r < 0x3000; r++ {
		tokens = append(tokens, string(r), "x"+string(r)+"y")
	}
	for _, tok := range tokens {
		if got, want := ValidToken(tok), validTokenSlow(tok); got != want {
			t.Errorf("ValidToken(%q) = %v, want %v", tok, got, want)
		}
	}
}

func FuzzValidToken(f *testing.F) {
	f.Add("order")
	f.Add("caf\u00e9 x")
	f.Fuzz(func(t *testing.T, tok string) {
		if got, want := ValidToken(tok), validTokenSlow(tok); got != want {
			t.Errorf("ValidToken(%q) = %v, want %v", tok, got, want)
		}
	})
}

package sandbox

import "testing"

func TestValidSnowflake(t *testing.T) {
	tests := map[string]bool{
		"41771983423143937":     true,
		"1081240586043576360":   true,
		"18446744073709551615":  true,
		"10000000000000000":     true,
		"":                      false,
		"4177198342314393":      false, // 16 digits
		"18446744073709551616":  false, // overflows uint64
		"99999999999999999999":  false,
		"100000000000000000000": false, // 21 digits
		"01081240586043576360":  false, // leading zero: not canonical
		"1081240586043576360 ":  false,
		"+1081240586043576360":  false,
		"108124058604357636x":   false,
		"1081240586043576.60":   false,
	}
	for s, want := range tests {
		if got := ValidSnowflake(s); got != want {
			t.Errorf("ValidSnowflake(%q) = %v, want %v", s, got, want)
		}
		if got := ValidSnowflake([]byte(s)); got != want {
			t.Errorf("ValidSnowflake([]byte(%q)) = %v, want %v", s, got, want)
		}
		if got := ValidGuildID(s); got != want {
			t.Errorf("ValidGuildID(%q) = %v, want %v", s, got, want)
		}
	}
}

// The bytes form is what the router's gateway parser calls on every event: it must not
// allocate.
func TestValidSnowflakeBytesDoesNotAllocate(t *testing.T) {
	id := []byte("1081240586043576360")
	if allocs := testing.AllocsPerRun(100, func() { ValidSnowflake(id) }); allocs != 0 {
		t.Fatalf("%v allocations per call", allocs)
	}
}

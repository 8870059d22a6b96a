package gosource

import (
	"go/ast"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWalkSeesTheModuleCodeOnly(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"a.go":                 "package a\n\nconst (\n\tName = \"alpha\"\n\tCount = 3\n\tOther, Last = \"o\", `l`\n)\n\nvar Unset string\n",
		"a_test.go":            "package a\n",
		"sub/b.go":             "package sub\n",
		"sub/testdata/c.go":    "package c\n",
		".run/d.go":            "package d\n",
		"terraform/e.go":       "package e\n",
		"docs/f.go":            "package f\n",
		"sub/notes.txt":        "not Go\n",
		"sub/b_test.go":        "package sub\n",
		"dist/api/main.go":     "package main\n",
		"node_modules/x/x.go":  "package x\n",
		"sub/deeper/deeper.go": "package deeper\n",
	}
	for name, text := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	walk := func(which Files) []string {
		var seen []string
		err := Walk(root, which, func(path string, f *ast.File, fset *token.FileSet) error {
			rel, _ := filepath.Rel(root, path)
			seen = append(seen, filepath.ToSlash(rel))
			if fset.Position(f.Package).Filename != path {
				t.Errorf("%s: positions not in the walk's file set", rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return seen
	}
	if got, want := walk(Code), []string{"a.go", "sub/b.go", "sub/deeper/deeper.go"}; !slices.Equal(got, want) {
		t.Errorf("code files %v, want %v", got, want)
	}
	if got, want := walk(Tests), []string{"a_test.go", "sub/b_test.go"}; !slices.Equal(got, want) {
		t.Errorf("test files %v, want %v", got, want)
	}

	var consts map[string]string
	if err := Walk(root, Code, func(path string, f *ast.File, _ *token.FileSet) error {
		if filepath.Base(path) == "a.go" {
			consts = StringConsts(f)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Name": "alpha", "Other": "o", "Last": "l"}
	if len(consts) != len(want) {
		t.Errorf("string constants %v, want %v", consts, want)
	}
	for k, v := range want {
		if consts[k] != v {
			t.Errorf("constant %s = %q, want %q", k, consts[k], v)
		}
	}
}

func TestWalkStopsAtTheFirstError(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"a.go", "b.go"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("package a\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "broken.go"), []byte("package\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err := Walk(root, Code, func(string, *ast.File, *token.FileSet) error { calls++; return nil })
	if err == nil || calls != 2 {
		t.Errorf("walk over a file that does not parse: err %v after %d calls, want an error after a.go and b.go", err, calls)
	}
}

// Package gosource reads the repository's Go sources for the tests that keep rules across
// the whole tree (log keys, configuration reads, metric use, alarm proofs). Those tests
// share one walk, with one list of the directories that hold no module code, and one
// reading of declarations, so that they all see the same files.
package gosource

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"iter"
	"path/filepath"
	"strconv"
	"strings"
)

// Files says which Go files Walk parses.
type Files int

const (
	// Code is the non-test files: what the binaries are built from.
	Code Files = iota
	// Tests is the _test.go files.
	Tests
)

// skipped reports whether a directory below the root holds no module code: hidden ones
// (.git, .run), fixtures, Terraform, docs and build output.
func skipped(name string) bool {
	switch name {
	case "testdata", "terraform", "docs", "dist", "node_modules":
		return true
	}
	return strings.HasPrefix(name, ".")
}

// Walk parses the Go files of the kind asked below root, in lexical order, and calls fn
// with each file's path and syntax tree; fset holds the positions of all of them. The first error, of parsing or of fn, stops the walk and is returned.
func Walk(root string, which Files, fn func(path string, f *ast.File, fset *token.FileSet) error) error {
	fset := token.NewFileSet()
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipped(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") != (which == Tests) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		return fn(path, f, fset)
	})
}

// Values yields each name declared by a tok declaration of f (token.CONST or token.VAR)
// that is given a value there, with that value.
func Values(f *ast.File, tok token.Token) iter.Seq2[*ast.Ident, ast.Expr] {
	return func(yield func(*ast.Ident, ast.Expr) bool) {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != tok {
				continue
			}
			for _, spec := range gd.Specs {
				vs, ok := spec.(*ast.ValueSpec)
				if !ok {
					continue
				}
				for i, name := range vs.Names {
					if i < len(vs.Values) && !yield(name, vs.Values[i]) {
						return
					}
				}
			}
		}
	}
}

// StringConsts returns the constants of f whose value is a string literal, name -> value.
func StringConsts(f *ast.File) map[string]string {
	out := map[string]string{}
	for name, value := range Values(f, token.CONST) {
		if v, ok := StringLit(value); ok {
			out[name.Name] = v
		}
	}
	return out
}

// StringLit returns the value of e when e is a string literal.
func StringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(lit.Value)
	return v, err == nil
}

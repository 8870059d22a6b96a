package docscheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// envRead is one place where the code reads an environment variable.
type envRead struct {
	Name string
	Pos  string // file:line, for messages
}

// envNameRE is the shape of the variables the code reads; other string arguments of methods
// named like the Reader's (String, Int, ...) are not variable names.
var envNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// readerMethods are the config.Reader methods whose first argument is a variable name, and
// the other calls that read one: os.Getenv, os.LookupEnv and Lookup functions.
var readerMethods = map[string]bool{
	"String": true, "Required": true, "Duration": true, "Int": true, "Bool": true, "List": true,
	"Getenv": true, "LookupEnv": true, "Lookup": true, "lookup": true,
}

// components says which part of the system a source directory belongs to; a directory not
// listed (and not excluded) is common to every function.
var components = []struct{ dir, component string }{
	{"functions/api", "api"},
	{"shared/api", "api"},
	{"functions/router", "router"},
	{"shared/routing", "router"},
	{"functions/cleanup", "cleanup"},
	{"shared/cleanup", "cleanup"},
	{"cmd/sandbox", "cli"},
	{"shared/cli", "cli"},
}

// excludedDirs read variables that are not configuration of the product: the test harness
// and these checks.
var excludedDirs = []string{"shared/internal/testenv", "shared/docscheck", "scripts"}

func componentOf(rel string) (string, bool) {
	for _, d := range excludedDirs {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return "", false
		}
	}
	for _, c := range components {
		if rel == c.dir || strings.HasPrefix(rel, c.dir+"/") {
			return c.component, true
		}
	}
	return "common", true
}

// scanEnvReads parses every non-test Go file of the repository and returns, per component,
// the environment variables read there. A variable name is a string literal or a string
// constant (of the same package, or qualified by package name) given as the first argument
// of a reader call.
func scanEnvReads(t *testing.T, repo string) map[string][]envRead {
	t.Helper()
	fset := token.NewFileSet()
	type parsed struct {
		rel  string
		file *ast.File
	}
	var files []parsed
	// consts maps "pkgname.Name" and, per directory, "dir:Name" to string constant values.
	consts := map[string]string{}
	err := filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != repo && (strings.HasPrefix(name, ".") || name == "testdata" || name == "terraform" || name == "docs") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		files = append(files, parsed{rel, f})
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						consts[rel+":"+n.Name] = v
						consts[f.Name.Name+"."+n.Name] = v
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scanning Go sources: %v", err)
	}

	out := map[string][]envRead{}
	for _, p := range files {
		component, ok := componentOf(p.rel)
		if !ok {
			continue
		}
		ast.Inspect(p.file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			var fn string
			switch f := call.Fun.(type) {
			case *ast.SelectorExpr:
				fn = f.Sel.Name
			case *ast.Ident:
				fn = f.Name
			}
			if !readerMethods[fn] {
				return true
			}
			var name string
			switch a := call.Args[0].(type) {
			case *ast.BasicLit:
				if a.Kind == token.STRING {
					name, _ = strconv.Unquote(a.Value)
				}
			case *ast.Ident:
				name = consts[p.rel+":"+a.Name]
			case *ast.SelectorExpr:
				if pkg, ok := a.X.(*ast.Ident); ok {
					name = consts[pkg.Name+"."+a.Sel.Name]
				}
			}
			if envNameRE.MatchString(name) {
				pos := fset.Position(call.Pos())
				rel, _ := filepath.Rel(repo, pos.Filename)
				out[component] = append(out[component], envRead{Name: name, Pos: rel + ":" + strconv.Itoa(pos.Line)})
			}
			return true
		})
	}
	return out
}

// names returns the distinct names of reads, sorted.
func names(reads []envRead) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range reads {
		if !seen[r.Name] {
			seen[r.Name] = true
			out = append(out, r.Name)
		}
	}
	sort.Strings(out)
	return out
}

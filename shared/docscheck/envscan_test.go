package docscheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/internal/gosource"
)

// envRead is one place where the code reads an environment variable.
type envRead struct {
	Name string
	Pos  string // file:line, for messages
	Dir  string // the package's directory, relative to the repository
	Func string // the top-level function it is in ("" outside one)
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

// mainPackages are the programs of the product, each the root of a part of the system: a
// variable read anywhere in a program's imports belongs to that part.
var mainPackages = map[string]string{
	"api":     "functions/api",
	"router":  "functions/router",
	"cleanup": "functions/cleanup",
	"cli":     "cmd/sandbox",
}

// excludedDirs read variables that are not configuration of the product: the test harness
// and these checks.
var excludedDirs = []string{"shared/internal/testenv", "shared/docscheck", "scripts"}

func excluded(rel string) bool {
	for _, d := range excludedDirs {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

// loaderFuncs are the functions that read a configuration type as a whole. Their reads are
// not attributed by the scan (a program imports a package whose loader it may never call)
// but by recording what each loader a program's main package calls looks up (configReads).
var loaderFuncs = map[string]bool{"LoadConfig": true, "LoadShared": true, "LoadTeardown": true, "LoadWorkerDatabase": true}

// scanEnvReads parses every non-test Go file of the repository and returns the environment
// variables read there, and each directory's imports of the module's own packages (as
// directories). A variable name is a string literal or a string constant (of the same
// package, or qualified by package name) given as the first argument of a reader call.
func scanEnvReads(t *testing.T, repo string) ([]envRead, map[string][]string) {
	t.Helper()
	var fset *token.FileSet // positions of the files below
	type parsed struct {
		rel  string
		file *ast.File
	}
	var files []parsed
	imports := map[string][]string{}
	// consts maps "pkgname.Name" and, per directory, "dir:Name" to string constant values.
	consts := map[string]string{}
	err := gosource.Walk(repo, gosource.Code, func(path string, f *ast.File, walked *token.FileSet) error {
		fset = walked
		rel, _ := filepath.Rel(repo, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		files = append(files, parsed{rel, f})
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if dir, ok := strings.CutPrefix(p, modulePath+"/"); ok && !slices.Contains(imports[rel], dir) {
				imports[rel] = append(imports[rel], dir)
			}
		}
		for name, v := range gosource.StringConsts(f) {
			consts[rel+":"+name] = v
			consts[f.Name.Name+"."+name] = v
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scanning Go sources: %v", err)
	}

	var out []envRead
	for _, p := range files {
		if excluded(p.rel) {
			continue
		}
		for _, decl := range p.file.Decls {
			fnName := ""
			if fd, ok := decl.(*ast.FuncDecl); ok {
				fnName = fd.Name.Name
			}
			ast.Inspect(decl, func(n ast.Node) bool {
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
					out = append(out, envRead{Name: name, Pos: rel + ":" + strconv.Itoa(pos.Line), Dir: p.rel, Func: fnName})
				}
				return true
			})
		}
	}
	return out, imports
}

// loaderCalls returns the loaders (package.Function, loaderFuncs) that the files of dir call.
func loaderCalls(t *testing.T, repo, dir string) []string {
	t.Helper()
	var out []string
	for _, f := range parseNonTestFiles(t, repo, dir) {
		ast.Inspect(f.file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && loaderFuncs[sel.Sel.Name] {
				if pkg, ok := sel.X.(*ast.Ident); ok && !slices.Contains(out, pkg.Name+"."+sel.Sel.Name) {
					out = append(out, pkg.Name+"."+sel.Sel.Name)
				}
			}
			return true
		})
	}
	sort.Strings(out)
	return out
}

// goFile is a parsed Go file and its path.
type goFile struct {
	path string
	file *ast.File
}

// parseNonTestFiles parses the Go files of repo/dir, test files aside.
func parseNonTestFiles(t *testing.T, repo, dir string) []goFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repo, dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []goFile
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, goFile{path, f})
	}
	return out
}

// closure returns dir and every module directory it imports, directly or not.
func closure(imports map[string][]string, dir string) map[string]bool {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(d string) {
		if seen[d] {
			return
		}
		seen[d] = true
		for _, i := range imports[d] {
			visit(i)
		}
	}
	visit(dir)
	return seen
}

// partReads returns, per part of the system (mainPackages), the variables it reads: what the
// loaders its main package calls look up (loaders, recorded), and every read outside a loader
// in the packages it imports. A main package calling a loader this check does not know fails
// the test.
func partReads(t *testing.T, repo string) map[string][]envRead {
	t.Helper()
	reads, imports := scanEnvReads(t, repo)
	out := map[string][]envRead{}
	for part, dir := range mainPackages {
		deps := closure(imports, dir)
		for _, r := range reads {
			if deps[r.Dir] && !loaderFuncs[r.Func] {
				out[part] = append(out[part], r)
			}
		}
		for _, call := range loaderCalls(t, repo, dir) {
			load, ok := loaders[call]
			if !ok {
				t.Fatalf("%s calls %s, a configuration loader this check does not know: add it to loaders", dir, call)
			}
			for _, name := range configReads(t, load) {
				out[part] = append(out[part], envRead{Name: name, Pos: dir + " (" + call + ")", Dir: dir})
			}
		}
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

// modulePath is the module's import path (go.mod).
const modulePath = "github.com/botplatform/discord-sandboxes"

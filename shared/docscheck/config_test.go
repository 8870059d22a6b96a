package docscheck

import (
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/cleanup"
	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

// noDefault is how docs/configuration.md writes "no default".
const noDefault = "—"

// envComponents are the tables of docs/configuration.md: the variables every function reads,
// those of tearing down (read by each function that tears down), those of the sandboxes'
// worker database (read by each function that reaches it), and one table per part of the
// system for the rest.
var envComponents = []string{"common", "teardown", "workers", "api", "router", "cleanup", "cli"}

// sharedLoaders are the loaders whose settings have a table of their own, read whole by each
// function that reads any of them.
var sharedLoaders = map[string]string{"teardown": "config.LoadTeardown", "workers": "config.LoadWorkerDatabase"}

// functions are the parts of the system that are Lambda functions.
var functions = []string{"api", "router", "cleanup"}

// documentedEnv returns, per component, the documented variables and their defaults.
func documentedEnv(t *testing.T) map[string]map[string]string {
	t.Helper()
	tables := taggedTables(readDoc(t, "configuration.md"), "env")
	out := map[string]map[string]string{}
	for _, c := range envComponents {
		tb, ok := tables[c]
		if !ok {
			t.Fatalf("docs/configuration.md has no table tagged <!-- env: %s -->", c)
		}
		if !slices.Equal(tb.Header, []string{"Variable", "Default", "Meaning"}) {
			t.Fatalf("docs/configuration.md line %d: the %s table's header is %q, want Variable | Default | Meaning", tb.Line, c, tb.Header)
		}
		vars := map[string]string{}
		for _, row := range tb.Rows {
			if len(row) != 3 || !envNameRE.MatchString(unquote(row[0])) || strings.TrimSpace(row[2]) == "" {
				t.Fatalf("docs/configuration.md, %s table: malformed row %q", c, row)
			}
			name := unquote(row[0])
			if _, dup := vars[name]; dup {
				t.Errorf("docs/configuration.md, %s table: %s appears twice", c, name)
			}
			vars[name] = unquote(row[1])
		}
		out[c] = vars
	}
	return out
}

// configReads returns the variables a loader looks up, sorted.
func configReads(t *testing.T, load func(config.Lookup) (any, error)) []string {
	t.Helper()
	var seen []string
	_, err := load(func(name string) (string, bool) {
		if !slices.Contains(seen, name) {
			seen = append(seen, name)
		}
		v, ok := baseEnv[name]
		return v, ok
	})
	if err != nil {
		t.Fatalf("loading a configuration with only the required settings: %v", err)
	}
	slices.Sort(seen)
	return seen
}

// expectedTables returns, per table of docs/configuration.md, the variables it must list, and
// where the code reads each (for messages): the common table holds what every function reads,
// the teardown table what config.LoadTeardown reads (every function that reads part of it
// must read all of it), each part's table the rest of what it reads.
func expectedTables(t *testing.T) (map[string][]string, map[string]string) {
	t.Helper()
	parts := partReads(t, repoRoot)
	where := map[string]string{}
	for _, reads := range parts {
		for _, r := range reads {
			if _, ok := where[r.Name]; !ok {
				where[r.Name] = r.Pos
			}
		}
	}
	var common []string
	for _, name := range names(parts["api"]) {
		if slices.Contains(names(parts["router"]), name) && slices.Contains(names(parts["cleanup"]), name) {
			common = append(common, name)
		}
	}
	want := map[string][]string{"common": common}
	var shared []string // the settings of every shared loader
	for table, loader := range sharedLoaders {
		want[table] = configReads(t, loaders[loader])
		shared = append(shared, want[table]...)
	}
	for part := range mainPackages {
		read := names(parts[part])
		for table, loader := range sharedLoaders {
			reads := 0
			for _, name := range want[table] {
				if slices.Contains(read, name) {
					reads++
				}
			}
			if reads != 0 && reads != len(want[table]) {
				t.Errorf("%s reads %d of the %d %s settings: read them all, with %s", part, reads, len(want[table]), table, loader)
			}
		}
		for _, name := range read {
			if (part != "cli" && slices.Contains(common, name)) || slices.Contains(shared, name) {
				continue
			}
			want[part] = append(want[part], name)
		}
	}
	return want, where
}

// Every variable a part of the system reads is documented in the right table, and every
// documented one is read. A part's reads follow its main package: the loaders it calls, and
// the reads in the packages it imports (not the directories: the api reads the teardown
// settings because it tears down, not because of where the code lives).
func TestConfigurationDocListsEveryVariableTheCodeReads(t *testing.T) {
	want, where := expectedTables(t)
	documented := documentedEnv(t)
	for _, c := range envComponents {
		if len(want[c]) == 0 {
			t.Errorf("no environment variable of the %s table was found in the code: the scan is broken", c)
		}
		for _, name := range want[c] {
			if _, ok := documented[c][name]; !ok {
				t.Errorf("%s is read (%s) but docs/configuration.md does not list it in the %s table", name, where[name], c)
			}
		}
		for name := range documented[c] {
			if !slices.Contains(want[c], name) {
				t.Errorf("docs/configuration.md lists %s in the %s table, but the code reads it elsewhere or not at all (%s)", name, c, where[name])
			}
		}
	}
}

// Terraform gives each function only variables it reads, and a setting it passes to one
// function reaches every function that reads it (the teardown settings reach the api as well
// as cleanup), so no function runs on a default where another runs on the operator's value.
func TestTerraformPassesEachFunctionWhatItReads(t *testing.T) {
	parts := partReads(t, repoRoot)
	env := loadTerraform(t, filepath.Join(repoRoot, "terraform")).lambdaEnvironment(t)
	passed := map[string][]string{} // variable -> the functions Terraform passes it to
	for _, fn := range functions {
		if _, ok := env[fn]; !ok {
			t.Fatalf("Terraform deploys no %s function (it deploys %v)", fn, env)
		}
		for _, name := range env[fn] {
			passed[name] = append(passed[name], fn)
			if !slices.Contains(names(parts[fn]), name) {
				t.Errorf("Terraform passes %s to the %s function, which never reads it", name, fn)
			}
		}
	}
	for name, to := range passed {
		for _, fn := range functions {
			if !slices.Contains(to, fn) && slices.Contains(names(parts[fn]), name) {
				t.Errorf("Terraform passes %s to %v but not to the %s function, which reads it too", name, to, fn)
			}
		}
	}
	for _, name := range configReads(t, loaders["config.LoadTeardown"]) {
		if len(passed[name]) == 0 {
			t.Errorf("Terraform passes the teardown setting %s to no function", name)
		}
	}
}

// loaders are the configuration loaders the functions' main packages call (partReads); the
// key is how a main package calls it.
var loaders = map[string]func(config.Lookup) (any, error){
	"api.LoadConfig":     func(l config.Lookup) (any, error) { return api.LoadConfig(l) },
	"routing.LoadConfig": func(l config.Lookup) (any, error) { return routing.LoadConfig(l) },
	"cleanup.LoadConfig": func(l config.Lookup) (any, error) { return cleanup.LoadConfig(l) },
	"config.LoadTeardown": func(l config.Lookup) (any, error) {
		r := config.NewReader(l)
		t := config.LoadTeardown(r)
		return t, r.Err()
	},
	"config.LoadWorkerDatabase": func(l config.Lookup) (any, error) {
		r := config.NewReader(l)
		w := config.LoadWorkerDatabase(r)
		return w, r.Err()
	},
}

// functionLoader is the loader of each function's whole configuration.
var functionLoader = map[string]string{"api": "api.LoadConfig", "router": "routing.LoadConfig", "cleanup": "cleanup.LoadConfig"}

// baseEnv holds the required settings, so that each loader succeeds.
var baseEnv = map[string]string{
	"DATABASE_URL":         "postgres://u:p@127.0.0.1:5432/d",
	"REDIS_ADDR":           "127.0.0.1:6379",
	"PRODUCTION_QUEUE_URL": "http://127.0.0.1:4566/000000000000/production",
}

// A documented default is right when setting the variable to it changes nothing: the loaded
// configuration equals the one loaded with the variable unset.
func TestConfigurationDocDefaultsAreTheCodes(t *testing.T) {
	documented := documentedEnv(t)
	parts := partReads(t, repoRoot)
	for c, vars := range documented {
		fns := []string{c}
		switch c {
		case "common":
			fns = functions
		case "teardown", "workers":
			fns = nil
			for _, fn := range functions {
				if slices.Contains(names(parts[fn]), firstKey(vars)) {
					fns = append(fns, fn)
				}
			}
		case "cli":
			continue // no defaults other than "unset"
		}
		for name, def := range vars {
			if def == noDefault {
				continue
			}
			for _, fn := range fns {
				unset, err := loaders[functionLoader[fn]](config.MapLookup(baseEnv))
				if err != nil {
					t.Fatalf("%s configuration with only the required settings: %v", fn, err)
				}
				env := map[string]string{name: def}
				for k, v := range baseEnv {
					env[k] = v
				}
				set, err := loaders[functionLoader[fn]](config.MapLookup(env))
				if err != nil {
					t.Errorf("%s=%q (the documented default) is refused by %s: %v", name, def, fn, err)
					continue
				}
				if !reflect.DeepEqual(unset, set) {
					t.Errorf("%s: the documented default %q is not the %s code's default\nunset: %+v\nset:   %+v", name, def, fn, unset, set)
				}
			}
		}
	}
}

// firstKey is the first of m's keys in order.
func firstKey(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	return keys[0]
}

// The comparison above must see a variable that is set to something else than its default.
func TestConfigurationDefaultComparisonDetectsADifference(t *testing.T) {
	unset, err := loaders["routing.LoadConfig"](config.MapLookup(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ROUTE_CACHE_TTL": "7m"}
	for k, v := range baseEnv {
		env[k] = v
	}
	set, err := loaders["routing.LoadConfig"](config.MapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(unset, set) {
		t.Fatal("ROUTE_CACHE_TTL=7m loads the same configuration as the default: the comparison cannot find a wrong default")
	}
}

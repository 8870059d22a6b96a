package docscheck

import (
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

// envComponents are the tables of docs/configuration.md, one per part of the system.
var envComponents = []string{"common", "api", "router", "cleanup", "cli"}

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

func TestConfigurationDocListsEveryVariableTheCodeReads(t *testing.T) {
	read := scanEnvReads(t, repoRoot)
	documented := documentedEnv(t)
	for _, c := range envComponents {
		code := names(read[c])
		if len(code) == 0 {
			t.Errorf("no environment variable read by the %s code was found: the scan is broken", c)
		}
		where := map[string]string{}
		for _, r := range read[c] {
			where[r.Name] = r.Pos
		}
		for _, name := range code {
			if _, ok := documented[c][name]; !ok {
				t.Errorf("%s reads %s (%s) but docs/configuration.md does not list it in the %s table", c, name, where[name], c)
			}
		}
		for name := range documented[c] {
			if !slices.Contains(code, name) {
				t.Errorf("docs/configuration.md lists %s in the %s table, but the %s code does not read it", name, c, c)
			}
		}
	}
}

// loaders are the configuration loaders of the functions; the common variables are read by
// each of them.
var loaders = map[string]func(config.Lookup) (any, error){
	"api":     func(l config.Lookup) (any, error) { return api.LoadConfig(l) },
	"router":  func(l config.Lookup) (any, error) { return routing.LoadConfig(l) },
	"cleanup": func(l config.Lookup) (any, error) { return cleanup.LoadConfig(l) },
}

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
	for c, vars := range documented {
		fns := []string{c}
		switch c {
		case "common":
			fns = []string{"api", "router", "cleanup"}
		case "cli":
			continue // no defaults other than "unset"
		}
		for name, def := range vars {
			if def == noDefault {
				continue
			}
			for _, fn := range fns {
				unset, err := loaders[fn](config.MapLookup(baseEnv))
				if err != nil {
					t.Fatalf("%s configuration with only the required settings: %v", fn, err)
				}
				env := map[string]string{name: def}
				for k, v := range baseEnv {
					env[k] = v
				}
				set, err := loaders[fn](config.MapLookup(env))
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

// The comparison above must see a variable that is set to something else than its default.
func TestConfigurationDefaultComparisonDetectsADifference(t *testing.T) {
	unset, err := loaders["router"](config.MapLookup(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ROUTE_CACHE_TTL": "7m"}
	for k, v := range baseEnv {
		env[k] = v
	}
	set, err := loaders["router"](config.MapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(unset, set) {
		t.Fatal("ROUTE_CACHE_TTL=7m loads the same configuration as the default: the comparison cannot find a wrong default")
	}
}

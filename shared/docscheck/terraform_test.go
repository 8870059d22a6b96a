package docscheck

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// tfAlarm is one CloudWatch alarm of the Terraform configuration, evaluated with the
// variables' defaults.
type tfAlarm struct {
	// Suffix is the alarm name without the "<name_prefix>-<environment>-" prefix.
	Suffix    string
	Namespace string // empty when the alarm is a metric math expression
	Metric    string // empty when the alarm is a metric math expression
}

// tfModule is the parsed root module: enough of Terraform's evaluation to know the names of
// the alarms (for_each over locals, string templates) and the outputs.
type tfModule struct {
	files   []*hcl.File
	ctx     *hcl.EvalContext
	outputs map[string]bool
	prefix  string // local.name
}

// tostring is Terraform's function of that name, which cty's standard library lacks.
var tostring = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowUnknown: true, AllowNull: true}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return convert.Convert(args[0], cty.String)
	},
})

func loadTerraform(t *testing.T, dir string) *tfModule {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no Terraform files in %s (%v)", dir, err)
	}
	m := &tfModule{outputs: map[string]bool{}}
	vars := map[string]cty.Value{}
	locals := map[string]hcl.Expression{}
	roots := map[string]bool{}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclsyntax.ParseConfig(src, p, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("parsing %s: %v", p, diags)
		}
		m.files = append(m.files, f)
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			switch b.Type {
			case "variable":
				vars[b.Labels[0]] = cty.DynamicVal
				if def, ok := b.Body.Attributes["default"]; ok {
					if v, diags := def.Expr.Value(nil); !diags.HasErrors() {
						vars[b.Labels[0]] = v
					}
				}
			case "locals":
				for name, a := range b.Body.Attributes {
					locals[name] = a.Expr
					for _, tr := range a.Expr.Variables() {
						roots[tr.RootName()] = true
					}
				}
			case "output":
				m.outputs[b.Labels[0]] = true
			}
		}
	}
	// Everything but var and local (resources, data sources, path) is unknown here.
	variables := map[string]cty.Value{"var": cty.ObjectVal(vars)}
	for r := range roots {
		if r != "var" && r != "local" {
			variables[r] = cty.DynamicVal
		}
	}
	m.ctx = &hcl.EvalContext{
		Variables: variables,
		Functions: map[string]function.Function{
			"keys": stdlib.KeysFunc, "values": stdlib.ValuesFunc, "merge": stdlib.MergeFunc,
			"length": stdlib.LengthFunc, "lookup": stdlib.LookupFunc, "coalesce": stdlib.CoalesceFunc,
			"jsonencode": stdlib.JSONEncodeFunc, "join": stdlib.JoinFunc, "format": stdlib.FormatFunc,
			"tostring": tostring,
		},
	}
	// Locals refer to each other in any order: evaluate until nothing changes.
	evaluated := map[string]cty.Value{}
	for range len(locals) + 1 {
		changed := false
		for name, expr := range locals {
			m.ctx.Variables["local"] = cty.ObjectVal(evaluated)
			v, _ := expr.Value(m.ctx) // unknown parts (resources) are expected
			if old, ok := evaluated[name]; !ok || !old.RawEquals(v) {
				evaluated[name] = v
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	m.ctx.Variables["local"] = cty.ObjectVal(evaluated)
	if n := evaluated["name"]; n.IsKnown() && n.Type() == cty.String {
		m.prefix = n.AsString() + "-"
	} else {
		t.Fatalf("local.name of %s is not known from the variables' defaults", dir)
	}
	return m
}

// alarms returns every aws_cloudwatch_metric_alarm, one per for_each key, sorted by name.
func (m *tfModule) alarms(t *testing.T) []tfAlarm {
	t.Helper()
	var out []tfAlarm
	for _, f := range m.files {
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type != "resource" || b.Labels[0] != "aws_cloudwatch_metric_alarm" {
				continue
			}
			eachValues := []cty.Value{cty.NilVal}
			var eachKeys []string
			if fe, ok := b.Body.Attributes["for_each"]; ok {
				v, diags := fe.Expr.Value(m.ctx)
				if diags.HasErrors() || !v.IsKnown() || v.IsNull() {
					t.Fatalf("%s: for_each of %s is not known: %v", fe.SrcRange, b.Labels[1], diags)
				}
				eachValues = nil
				for it := v.ElementIterator(); it.Next(); {
					k, val := it.Element()
					eachKeys = append(eachKeys, k.AsString())
					eachValues = append(eachValues, val)
				}
			}
			for i, each := range eachValues {
				ctx := m.ctx.NewChild()
				if each != cty.NilVal {
					ctx.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{
						"key": cty.StringVal(eachKeys[i]), "value": each,
					})}
				}
				str := func(attr string) string {
					a, ok := b.Body.Attributes[attr]
					if !ok {
						return ""
					}
					v, diags := a.Expr.Value(ctx)
					if diags.HasErrors() || !v.IsKnown() || v.Type() != cty.String {
						return ""
					}
					return v.AsString()
				}
				name := str("alarm_name")
				suffix, ok := strings.CutPrefix(name, m.prefix)
				if !ok {
					t.Fatalf("alarm %s.%s: name %q does not start with %q", b.Labels[1], strings.Join(eachKeys, ","), name, m.prefix)
				}
				out = append(out, tfAlarm{Suffix: suffix, Namespace: str("namespace"), Metric: str("metric_name")})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Suffix < out[j].Suffix })
	return out
}

// lambdaEnvironment returns, per function (the for_each keys of aws_lambda_function.this), the
// names of the environment variables Terraform gives it, evaluated with the variables'
// defaults (values may be unknown; the names are not).
func (m *tfModule) lambdaEnvironment(t *testing.T) map[string][]string {
	t.Helper()
	for _, f := range m.files {
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type != "resource" || b.Labels[0] != "aws_lambda_function" || b.Labels[1] != "this" {
				continue
			}
			fe, ok := b.Body.Attributes["for_each"]
			if !ok {
				t.Fatalf("%s: aws_lambda_function.this has no for_each", b.DefRange())
			}
			each, diags := fe.Expr.Value(m.ctx)
			if diags.HasErrors() || !each.IsKnown() || each.IsNull() {
				t.Fatalf("%s: for_each of aws_lambda_function.this is not known: %v", fe.SrcRange, diags)
			}
			var vars hclsyntax.Expression
			for _, nb := range b.Body.Blocks {
				if nb.Type == "environment" {
					if a, ok := nb.Body.Attributes["variables"]; ok {
						vars = a.Expr
					}
				}
			}
			if vars == nil {
				t.Fatalf("%s: aws_lambda_function.this has no environment variables", b.DefRange())
			}
			out := map[string][]string{}
			for it := each.ElementIterator(); it.Next(); {
				k, v := it.Element()
				ctx := m.ctx.NewChild()
				ctx.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
				env, diags := vars.Value(ctx)
				if diags.HasErrors() || !env.IsKnown() || env.IsNull() || !env.CanIterateElements() {
					t.Fatalf("%s: the environment of %s is not known from the variables' defaults: %v", vars.Range(), k.AsString(), diags)
				}
				var keys []string
				for it := env.ElementIterator(); it.Next(); {
					name, _ := it.Element()
					keys = append(keys, name.AsString())
				}
				sort.Strings(keys)
				out[k.AsString()] = keys
			}
			return out
		}
	}
	t.Fatal("terraform: no aws_lambda_function.this")
	return nil
}

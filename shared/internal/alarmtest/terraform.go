package alarmtest

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Module is a Terraform root module parsed far enough to evaluate its literal locals and its
// metric alarms. The only variable it knows is var.environment.
type Module struct {
	environment string
	sources     map[string][]byte
	locals      map[string]hcl.Expression
	resources   []*hclsyntax.Block
}

// ParseModule parses every .tf file of dir; environment is the value of var.environment.
func ParseModule(dir, environment string) (*Module, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("alarmtest: no Terraform files in %s (%v)", dir, err)
	}
	m := &Module{environment: environment, sources: map[string][]byte{}, locals: map[string]hcl.Expression{}}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		m.sources[filepath.Base(name)] = src
		f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("alarmtest: parse %s: %s", name, diags.Error())
		}
		for _, block := range f.Body.(*hclsyntax.Body).Blocks {
			switch block.Type {
			case "locals":
				for name, attr := range block.Body.Attributes {
					m.locals[name] = attr.Expr
				}
			case "resource":
				m.resources = append(m.resources, block)
			}
		}
	}
	return m, nil
}

// Sources returns the contents of the module's files by file name.
func (m *Module) Sources() map[string][]byte { return m.sources }

// Local evaluates a local. It may refer to var.environment and to other locals that can be
// evaluated the same way, and call try, lookup and merge; other functions, resources and
// other variables are not available, so the locals the tests read stay literal.
func (m *Module) Local(name string) (cty.Value, error) {
	return m.local(name, map[string]bool{})
}

func (m *Module) local(name string, visiting map[string]bool) (cty.Value, error) {
	expr, ok := m.locals[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("alarmtest: local %q not found", name)
	}
	if visiting[name] {
		return cty.NilVal, fmt.Errorf("alarmtest: local %q refers to itself", name)
	}
	visiting[name] = true
	defer delete(visiting, name)
	return m.eval(expr, nil, visiting, "local "+name)
}

// functions are the Terraform functions an optional alarm attribute is commonly written with
// (datapoints_to_alarm = try(each.value.datapoints_to_alarm, null)).
var functions = map[string]function.Function{
	"try":    tryfunc.TryFunc,
	"lookup": stdlib.LookupFunc,
	"merge":  stdlib.MergeFunc,
}

// eval evaluates expr with var.environment, the locals it refers to and the extra variables.
func (m *Module) eval(expr hcl.Expression, extra map[string]cty.Value, visiting map[string]bool, what string) (cty.Value, error) {
	vars := map[string]cty.Value{
		"var": cty.ObjectVal(map[string]cty.Value{"environment": cty.StringVal(m.environment)}),
	}
	locals := map[string]cty.Value{}
	for _, tr := range expr.Variables() {
		if tr.RootName() != "local" || len(tr) < 2 {
			continue
		}
		attr, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		v, err := m.local(attr.Name, visiting)
		if err != nil {
			return cty.NilVal, err
		}
		locals[attr.Name] = v
	}
	if len(locals) > 0 {
		vars["local"] = cty.ObjectVal(locals)
	}
	for k, v := range extra {
		vars[k] = v
	}
	v, diags := expr.Value(&hcl.EvalContext{Variables: vars, Functions: functions})
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("alarmtest: evaluate %s: %s (keep it literal so the tests can read it)", what, diags.Error())
	}
	if !v.IsWhollyKnown() {
		return cty.NilVal, fmt.Errorf("alarmtest: %s is not known without applying", what)
	}
	return v, nil
}

// metricAlarmsLocal is the local that the alarms on the functions' own metrics iterate.
const metricAlarmsLocal = "metric_alarms"

// MetricAlarms evaluates the aws_cloudwatch_metric_alarm resource whose for_each is
// local.metric_alarms, once per key, and returns the alarms by key.
func (m *Module) MetricAlarms() (map[string]MetricAlarm, error) {
	block, err := m.metricAlarmResource()
	if err != nil {
		return nil, err
	}
	alarms, err := m.Local(metricAlarmsLocal)
	if err != nil {
		return nil, err
	}
	if !alarms.CanIterateElements() {
		return nil, fmt.Errorf("alarmtest: local.%s is not a map", metricAlarmsLocal)
	}
	out := map[string]MetricAlarm{}
	var errs []error
	for it := alarms.ElementIterator(); it.Next(); {
		key, value := it.Element()
		a, err := m.evalAlarm(block, key.AsString(), value)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[a.Name] = a
	}
	return out, errors.Join(errs...)
}

func (m *Module) metricAlarmResource() (*hclsyntax.Block, error) {
	for _, b := range m.resources {
		if len(b.Labels) != 2 || b.Labels[0] != "aws_cloudwatch_metric_alarm" {
			continue
		}
		fe, ok := b.Body.Attributes["for_each"]
		if !ok {
			continue
		}
		vars := fe.Expr.Variables()
		if len(vars) == 1 && len(vars[0]) == 2 && vars[0].RootName() == "local" {
			if attr, ok := vars[0][1].(hcl.TraverseAttr); ok && attr.Name == metricAlarmsLocal {
				return b, nil
			}
		}
	}
	return nil, fmt.Errorf("alarmtest: no aws_cloudwatch_metric_alarm with for_each = local.%s", metricAlarmsLocal)
}

// evalAlarm evaluates the attributes of the alarm resource for one for_each element.
func (m *Module) evalAlarm(block *hclsyntax.Block, key string, value cty.Value) (MetricAlarm, error) {
	each := map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(key), "value": value})}
	var errs []error
	attr := func(name string, want cty.Type, required bool) cty.Value {
		a, ok := block.Body.Attributes[name]
		if !ok {
			if required {
				errs = append(errs, fmt.Errorf("no %s", name))
			}
			return cty.NilVal
		}
		v, err := m.eval(a.Expr, each, map[string]bool{}, name)
		if err == nil && v.IsNull() {
			if !required {
				return cty.NilVal // null leaves an optional argument unset
			}
			err = errors.New("null")
		}
		if err == nil {
			v, err = convert.Convert(v, want)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return cty.NilVal
		}
		return v
	}
	str := func(name string, required bool) string {
		if v := attr(name, cty.String, required); v != cty.NilVal {
			return v.AsString()
		}
		return ""
	}
	num := func(name string, required bool) float64 {
		if v := attr(name, cty.Number, required); v != cty.NilVal {
			f, _ := v.AsBigFloat().Float64()
			return f
		}
		return 0
	}
	integer := func(name string, required bool) int {
		if v := attr(name, cty.Number, required); v != cty.NilVal {
			n, acc := v.AsBigFloat().Int64()
			if acc != big.Exact {
				errs = append(errs, fmt.Errorf("%s: %s is not a whole number", name, v.AsBigFloat().Text('g', -1)))
			}
			return int(n)
		}
		return 0
	}
	for _, unsupported := range []string{"extended_statistic", "threshold_metric_id"} {
		if _, ok := block.Body.Attributes[unsupported]; ok {
			errs = append(errs, fmt.Errorf("%s is not supported", unsupported))
		}
	}
	for _, b := range block.Body.Blocks {
		errs = append(errs, fmt.Errorf("%s blocks (metric math) are not supported", b.Type))
	}
	a := MetricAlarm{
		Name:               key,
		Namespace:          str("namespace", true),
		MetricName:         str("metric_name", true),
		Dimensions:         map[string]string{},
		Statistic:          str("statistic", true),
		ComparisonOperator: str("comparison_operator", true),
		Threshold:          num("threshold", true),
		Period:             time.Duration(integer("period", true)) * time.Second,
		EvaluationPeriods:  integer("evaluation_periods", true),
		DatapointsToAlarm:  integer("datapoints_to_alarm", false),
		TreatMissingData:   str("treat_missing_data", false),
	}
	if dims := attr("dimensions", cty.Map(cty.String), false); dims != cty.NilVal {
		for k, v := range dims.AsValueMap() {
			a.Dimensions[k] = v.AsString()
		}
	}
	if err := a.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return MetricAlarm{}, fmt.Errorf("alarmtest: alarm %s: %w", key, err)
	}
	return a.withDefaults(), nil
}

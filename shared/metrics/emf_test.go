package metrics_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prozz/aws-embedded-metrics-golang/emf"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// emfSchema is the EMF JSON schema of the specification, compiled once.
var emfSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	f, err := os.Open("testdata/emf-schema.json")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("emf-schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("emf-schema.json")
})

// emfLine is the part of an EMF line the tests look at.
type emfLine struct {
	AWS struct {
		Timestamp         int64
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct{ Name, Unit string }
		}
	} `json:"_aws"`
	Members map[string]any `json:"-"`
}

// splitLines returns the lines of out, failing on a line that does not end in a newline.
func splitLines(t *testing.T, out []byte) []string {
	t.Helper()
	if len(out) == 0 {
		return nil
	}
	if !bytes.HasSuffix(out, []byte("\n")) {
		t.Fatalf("output does not end with a newline: %q", out)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// validateEMF validates one line against the EMF schema.
func validateEMF(line string) error {
	schema, err := emfSchema()
	if err != nil {
		return fmt.Errorf("compiling EMF schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
	if err != nil {
		return fmt.Errorf("line is not JSON: %w", err)
	}
	if err := schema.Validate(inst); err != nil {
		return fmt.Errorf("line does not validate against the EMF schema: %w", err)
	}
	return nil
}

// checkLine validates one line against the EMF schema and against the rules the schema
// cannot express: every referenced target member exists with the right JSON type, the
// namespace is ours and the library's default dimensions are absent. It also checks the
// emitter's layout: the line declares exactly one dimension set, and it carries no catalog
// dimension outside that set (a total's line has no breakdown dimension).
func checkLine(t *testing.T, line string) emfLine {
	t.Helper()
	if err := validateEMF(line); err != nil {
		t.Fatalf("%v\n%s", err, line)
	}
	var parsed emfLine
	if err := json.Unmarshal([]byte(line), &parsed); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(line), &parsed.Members); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(line, ":null") || strings.Contains(line, "[null") {
		t.Errorf("line holds a null: %s", line)
	}
	for _, forbidden := range []string{"ServiceName", "ServiceType"} {
		if _, ok := parsed.Members[forbidden]; ok {
			t.Errorf("line carries %s: %s", forbidden, line)
		}
	}
	if len(parsed.AWS.CloudWatchMetrics) == 0 {
		t.Errorf("line has no metric directive: %s", line)
	}
	var sets []string
	for _, d := range parsed.AWS.CloudWatchMetrics {
		for _, set := range d.Dimensions {
			sets = append(sets, fmt.Sprint(set))
		}
	}
	if len(sets) != 1 {
		t.Errorf("line declares %d dimension sets %v, want exactly one: %s", len(sets), sets, line)
	} else {
		set := parsed.AWS.CloudWatchMetrics[0].Dimensions[0]
		for _, d := range allDimensions {
			if _, ok := parsed.Members[string(d)]; ok && !slices.Contains(set, string(d)) {
				t.Errorf("line carries dimension %s outside its set %v: %s", d, set, line)
			}
		}
	}
	for _, d := range parsed.AWS.CloudWatchMetrics {
		if d.Namespace != metrics.Namespace {
			t.Errorf("namespace %q, want %q", d.Namespace, metrics.Namespace)
		}
		for _, set := range d.Dimensions {
			for _, key := range set {
				if key == "ServiceName" || key == "ServiceType" {
					t.Errorf("dimension set %v uses the library default %s", set, key)
				}
				if _, ok := parsed.Members[key].(string); !ok {
					t.Errorf("dimension %s has no string target member: %s", key, line)
				}
			}
		}
		for _, m := range d.Metrics {
			if _, ok := parsed.Members[m.Name].(float64); !ok {
				t.Errorf("metric %s has no numeric target member: %s", m.Name, line)
			}
		}
	}
	return parsed
}

// TestSchemaCatchesLibraryDefaults shows why the emitter sets dimension sets explicitly: with
// its defaults and AWS_LAMBDA_FUNCTION_NAME unset, the library writes "Dimensions": null,
// which the schema rejects.
func TestSchemaCatchesLibraryDefaults(t *testing.T) {
	unsetenv(t, "AWS_LAMBDA_FUNCTION_NAME")
	var out bytes.Buffer
	emf.New(emf.WithWriter(&out)).Namespace(metrics.Namespace).MetricAs("CleanupRuns", 1, emf.Count).Log()
	if !strings.Contains(out.String(), `"Dimensions":null`) {
		t.Fatalf("library output changed, the emitter's workaround may be unneeded: %s", out.String())
	}
	if err := validateEMF(strings.TrimSpace(out.String())); err == nil {
		t.Errorf("schema accepted %s", out.String())
	}
}

// TestSchemaDimensionLimit checks the one edit of testdata/emf-schema.json (a dimension set
// holds up to 30 dimensions, CloudWatch's limit, not 9; docs/metrics.md): 30 pass, 31 fail.
func TestSchemaDimensionLimit(t *testing.T) {
	line := func(n int) string {
		var keys []string
		members := ""
		for i := range n {
			keys = append(keys, fmt.Sprintf("%q", fmt.Sprintf("D%d", i)))
			members += fmt.Sprintf(`,"D%d":"v"`, i)
		}
		return fmt.Sprintf(`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[%s]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"M":1%s}`,
			strings.Join(keys, ","), members)
	}
	if err := validateEMF(line(30)); err != nil {
		t.Errorf("30 dimensions: %v", err)
	}
	if err := validateEMF(line(31)); err == nil {
		t.Error("31 dimensions accepted")
	}
}

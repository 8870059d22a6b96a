package api_test

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const apiDoc = "../../docs/api.md"

// docTable returns the rows of the first Markdown table after the heading, as cells.
func docTable(t *testing.T, heading string) [][]string {
	t.Helper()
	f, err := os.Open(apiDoc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var rows [][]string
	inSection, inTable := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == heading:
			inSection = true
		case !inSection:
		case strings.HasPrefix(line, "|"):
			inTable = true
			cells := strings.Split(strings.Trim(line, "|"), "|")
			for i := range cells {
				cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
			}
			rows = append(rows, cells)
		case inTable:
			return rows
		}
	}
	if len(rows) == 0 {
		t.Fatalf("%s has no table after %q", apiDoc, heading)
	}
	return rows
}

var methodRE = regexp.MustCompile(`^(GET|POST|PUT|PATCH|DELETE)$`)

// TestDocumentedRoutesMatchTheHandler keeps docs/api.md true: every documented route exists
// in the mux, every route is documented with the least role the handler's access table
// declares for it, and Terraform's route keys are the same list.
func TestDocumentedRoutesMatchTheHandler(t *testing.T) {
	var documented []string
	roles := map[string]string{}
	for _, cells := range docTable(t, "## Routes") {
		if len(cells) >= 3 && methodRE.MatchString(cells[0]) {
			documented = append(documented, cells[0]+" "+cells[1])
			roles[cells[0]+" "+cells[1]] = cells[2]
		}
	}
	slices.Sort(documented)
	e := newEnv(t, envOptions{})
	served := e.handler.Routes()
	if !slices.Equal(documented, served) {
		t.Errorf("docs/api.md routes differ from the handler's:\ndocumented: %q\nserved:     %q", documented, served)
	}
	// New refuses a route without an entry in the access table (checkRouteAccess), so the
	// table and the mux are the same list; here the doc's roles are the table's.
	declared := e.handler.RouteAccess()
	for _, route := range served {
		if doc, ok := roles[route]; ok && doc != declared[route] {
			t.Errorf("docs/api.md says %s needs %q, the handler's access table %q", route, doc, declared[route])
		}
	}
	for _, route := range documented {
		method, path, _ := strings.Cut(route, " ")
		path = strings.NewReplacer("{name}", "alpha", "{guild_id}", guild1).Replace(path)
		if r := e.do(t, call{method: method, path: path, principal: admin}); r.status == 404 && strings.Contains(string(r.body), "no route") {
			t.Errorf("documented route %s is not served", route)
		}
	}
	tf, err := os.ReadFile("../../terraform/api_gateway.tf")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, m := range regexp.MustCompile(`"((?:GET|POST|PUT|PATCH|DELETE) /[^"]*)"`).FindAllStringSubmatch(string(tf), -1) {
		keys = append(keys, m[1])
	}
	slices.Sort(keys)
	if !slices.Equal(keys, served) {
		t.Errorf("terraform route keys differ from the handler's:\nterraform: %q\nserved:    %q", keys, served)
	}
}

// TestDocumentedErrorCodes checks the error table: every code, with the status it answers.
func TestDocumentedErrorCodes(t *testing.T) {
	documented := map[string]int{}
	for _, cells := range docTable(t, "## Errors") {
		if len(cells) < 2 {
			continue
		}
		if status, err := strconv.Atoi(cells[1]); err == nil {
			documented[cells[0]] = status
		}
	}
	for _, code := range sandbox.Codes() {
		status, ok := documented[string(code)]
		if !ok {
			t.Errorf("error code %s is not documented", code)
			continue
		}
		if status != api.StatusOf(code) {
			t.Errorf("docs say %s is %d, the handler answers %d", code, status, api.StatusOf(code))
		}
		delete(documented, string(code))
	}
	for code := range documented {
		t.Errorf("docs list %s, which is not a code", code)
	}
}

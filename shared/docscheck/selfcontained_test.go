package docscheck

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The repository stands alone: a clone has everything its docs and comments point at. The
// design lives in docs/architecture.md; nothing cites a design document kept elsewhere, and
// no link or path of the docs leaves the repository. External URLs (AWS's and Discord's
// documentation, ...) are fine.

// designCitationRE matches a citation of the design document the project was started from,
// which a clone does not have: "DESIGN §5", "DESIGN 7", "DESIGN.md", and a bare "§8".
var designCitationRE = regexp.MustCompile(`\bDESIGN(\.md\b|\s*§|\s+\d)|§\s*\d`)

// designCitations returns "line N: text" for every citation of the design document in text.
func designCitations(text string) []string {
	var out []string
	for i, line := range strings.Split(text, "\n") {
		if designCitationRE.MatchString(line) {
			out = append(out, fmt.Sprintf("line %d: %s", i+1, strings.TrimSpace(line)))
		}
	}
	return out
}

// mdLinkRE matches the target of a Markdown link or image, [text](target) or [text]: target,
// and of an HTML href or src.
var mdLinkRE = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|^\s*\[[^\]]+\]:\s+<?(\S+?)>?(?:\s|$)|(?:href|src)="([^"]+)"`)

// parentPathRE matches a relative path that climbs (../), wherever it is: a link, a code
// span, a command in a code block.
var parentPathRE = regexp.MustCompile(`(?:^|[\s(\x60'"=:])((?:\./)?(?:\.\./)+[A-Za-z0-9_.*<>{}/-]*)`)

// schemeRE matches the scheme of a URL.
var schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

// escapes returns the problems of a Markdown file at rel (relative to the repository root,
// slash-separated) whose text is doc: links and paths that leave the repository, relative
// links to files that do not exist (exists answers for a repository-relative path), and
// citations of the design document.
func escapes(rel, doc string, exists func(string) bool) []string {
	var problems []string
	dir := path.Dir(rel)
	// inside resolves a relative target from the file's directory: "" when it leaves the root.
	inside := func(target string) (string, bool) {
		p := path.Clean(path.Join(dir, target))
		if p == ".." || strings.HasPrefix(p, "../") {
			return "", false
		}
		return p, true
	}
	for i, line := range strings.Split(doc, "\n") {
		where := fmt.Sprintf("%s:%d", rel, i+1)
		for _, m := range mdLinkRE.FindAllStringSubmatch(line, -1) {
			target := m[1] + m[2] + m[3]
			switch {
			case strings.HasPrefix(target, "#"):
				continue
			case strings.HasPrefix(strings.ToLower(target), "file:"):
				problems = append(problems, fmt.Sprintf("%s: link to a local file %q", where, target))
				continue
			case schemeRE.MatchString(target):
				continue // an external URL (https:, mailto:)
			case strings.HasPrefix(target, "/"):
				problems = append(problems, fmt.Sprintf("%s: link to an absolute path %q: link relative to %s", where, target, rel))
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			target, _, _ = strings.Cut(target, "?")
			p, ok := inside(target)
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s: link %q leaves the repository", where, target))
			case !exists(p):
				problems = append(problems, fmt.Sprintf("%s: link %q: %s does not exist in the repository", where, target, p))
			}
		}
		for _, m := range parentPathRE.FindAllStringSubmatch(line, -1) {
			if _, ok := inside(m[1]); !ok {
				problems = append(problems, fmt.Sprintf("%s: path %q leaves the repository", where, m[1]))
			}
		}
	}
	for _, c := range designCitations(doc) {
		problems = append(problems, fmt.Sprintf("%s: cites a design document outside the repository (%s): cite the section of docs/architecture.md that holds the fact", rel, c))
	}
	return problems
}

// repoExists reports whether a repository-relative path exists.
func repoExists(p string) bool {
	_, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(p)))
	return err == nil
}

// ownMarkdown lists README.md and docs/*.md, repository-relative.
func ownMarkdown(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil || len(docs) < 5 {
		t.Fatalf("docs/*.md: %v (%d files)", err, len(docs))
	}
	out := []string{"README.md"}
	for _, d := range docs {
		out = append(out, "docs/"+filepath.Base(d))
	}
	return out
}

func TestDocsStayInsideTheRepository(t *testing.T) {
	links := 0
	for _, rel := range ownMarkdown(t) {
		b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		links += len(mdLinkRE.FindAllString(string(b), -1))
		for _, p := range escapes(rel, string(b), repoExists) {
			t.Error(p)
		}
	}
	if links < 50 {
		t.Errorf("only %d links found in README.md and docs/: the extraction is broken", links)
	}
}

// citationSources are the files scanned for design citations: every source, script, doc and
// configuration of the repository.
var citationSources = []string{".go", ".md", ".sh", ".tf", ".hcl", ".json", ".yml", ".yaml", ".rules", ".sql", "Makefile"}

// citationExempt are the files the scan skips, with why.
var citationExempt = map[string]string{
	// This file holds the patterns and the examples of what it forbids.
	"shared/docscheck/selfcontained_test.go": "the rule itself",
	// Applied migrations never change: their checksum is recorded in every database, which
	// refuses a build whose migration differs (controlplane.CheckSchema). Their comments stay
	// as they were applied; docs/architecture.md, "Data model", is where the facts live now.
	"shared/controlplane/migrations/0001_control_plane.sql":    "applied migration",
	"shared/controlplane/migrations/0010_orphan_sightings.sql": "applied migration",
}

// repoFiles returns the repository's files whose names end in one of suffixes, as slash
// paths relative to its root in lexical order, outside hidden directories (.git, .run) and
// build output.
func repoFiles(t *testing.T, suffixes ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "dist" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(d.Name(), s) }) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNothingCitesTheDesignDocument(t *testing.T) {
	scanned := 0
	for _, rel := range repoFiles(t, citationSources...) {
		if _, ok := citationExempt[rel]; ok {
			continue
		}
		if rel == "README.md" || strings.HasPrefix(rel, "docs/") {
			continue // TestDocsStayInsideTheRepository checks them, citations included
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		scanned++
		for _, c := range designCitations(string(b)) {
			t.Errorf("%s %s: cites a design document outside the repository: cite the section of docs/architecture.md that holds the fact", rel, c)
		}
	}
	if scanned < 200 {
		t.Errorf("only %d files scanned: the walk is broken", scanned)
	}
}

// sectionCitationRE matches a citation of a section of a doc in prose or a comment:
// docs/architecture.md, "Local mode" (or architecture.md, "Local mode" within docs/).
var sectionCitationRE = regexp.MustCompile(`\b((?:docs/)?[a-z0-9-]+\.md),\s+"([^"]+)"`)

// headings returns the titles of the Markdown headings of doc (outside code blocks).
func headings(doc string) []string {
	var out []string
	inFence := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
			inFence = !inFence
			continue
		}
		if !inFence && strings.HasPrefix(line, "#") {
			out = append(out, strings.TrimSpace(strings.TrimLeft(line, "#")))
		}
	}
	return out
}

// Every citation of a doc's section (docs/architecture.md, "Cleanup") names a heading of that
// doc (its title, or the start of it), so the comments that replaced the design citations
// keep pointing at something.
func TestCitedDocSectionsExist(t *testing.T) {
	titles := map[string][]string{}
	for _, rel := range ownMarkdown(t) {
		b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		titles[path.Base(rel)] = headings(string(b))
	}
	cited := 0
	for _, rel := range repoFiles(t, ".go", ".md", ".sql", ".sh") {
		b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range sectionCitationRE.FindAllStringSubmatch(line, -1) {
				doc, title := path.Base(m[1]), m[2]
				list, ok := titles[doc]
				if !ok {
					continue // not one of our docs (a file name in a test's data, ...)
				}
				cited++
				if !slices.ContainsFunc(list, func(h string) bool { return strings.HasPrefix(h, title) }) {
					t.Errorf("%s:%d cites %s, %q: no such heading in %s", rel, i+1, m[1], title, doc)
				}
			}
		}
	}
	if cited < 15 {
		t.Errorf("only %d section citations found: the extraction is broken", cited)
	}
}

// The rule fails on what it forbids, and passes what it allows.
func TestSelfContainedRuleFindsEscapes(t *testing.T) {
	exists := func(p string) bool {
		return slices.Contains([]string{"docs/api.md", "docs/architecture.md", "shared/metrics/catalog.go"}, p)
	}
	for _, c := range []struct {
		file, text string
		want       int
	}{
		// What a clone cannot follow.
		{"README.md", "The design: [DESIGN.md](../shared/DESIGN.md).", 3}, // a link and a path that leave, a citation
		{"README.md", "See `../shared/DESIGN.md` for the design.", 2},     // a path that leaves, a citation
		{"docs/runbook.md", "Read [the design](../../shared/DESIGN.md#5).", 3},
		{"docs/api.md", "[design](/work/shared/DESIGN.md)", 2},      // absolute path, a citation
		{"docs/api.md", "[notes](file:///work/shared/notes.md)", 1}, // a local file
		{"docs/api.md", "[gone](architecture.md#cleanup) [typo](archtecture.md)", 1},
		{"docs/api.md", "The teardown (DESIGN §5) runs every 15 minutes.", 1},
		{"docs/api.md", "The schema edit of DESIGN 7.", 1},
		{"docs/api.md", "Outside Lambda (§8) it polls.", 1},
		{"docs/api.md", "```sh\ncat ../../../etc/passwd\n```", 1},
		// What stays inside, or is public documentation.
		{"README.md", "[api](docs/api.md), [catalog](shared/metrics/catalog.go), [up](#the-two-commands)", 0},
		{"docs/api.md", "[arch](architecture.md#cleanup), [catalog](../shared/metrics/catalog.go)", 0},
		{"docs/api.md", "[EMF](https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)", 0},
		{"docs/api.md", "[gateway](https://discord.com/developers/docs/events/gateway-events)", 0},
		{"docs/deploy.md", "terraform -chdir=terraform plan -var-file=../env/prod.tfvars", 0}, // docs/../env stays inside
		{"docs/api.md", "The DESIGNATED owner; see docs/architecture.md, \"Cleanup\".", 0},
	} {
		got := escapes(c.file, c.text, exists)
		if len(got) != c.want {
			t.Errorf("%s: %q: %d problems, want %d: %q", c.file, c.text, len(got), c.want, got)
		}
	}
	for _, c := range []struct {
		text string
		want int
	}{
		{"// Teardown runs the steps of DESIGN §5 on one sandbox.", 1},
		{"// Package keys is the key layout (DESIGN §3.3):", 1},
		{"-- The control plane (DESIGN §3.1).", 1},
		{"// The schema edit of DESIGN 7.", 1},
		{"// See ../shared/DESIGN.md.", 1},
		{"// Teardown runs the steps of docs/architecture.md, \"Cleanup\".", 0},
		{"// DESIGNER and DESIGNATED are words, not citations.", 0},
	} {
		if got := designCitations(c.text); len(got) != c.want {
			t.Errorf("%q: %d citations, want %d: %q", c.text, len(got), c.want, got)
		}
	}
}

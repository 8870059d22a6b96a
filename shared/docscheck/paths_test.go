package docscheck

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoPathRE matches a code span that names a file or directory of the repository.
var repoPathRE = regexp.MustCompile(`^(functions|shared|scripts|terraform|cmd|docs)/[A-Za-z0-9_./*-]*$`)

// ownDocs are the docs whose file references are checked.
var ownDocs = []string{"architecture.md", "configuration.md", "deploy.md", "metrics.md", "performance.md", "performance-cleanup.md", "runbook.md", "security.md", "streams.md"}

func TestDocsNameFilesThatExist(t *testing.T) {
	n := 0
	for _, name := range ownDocs {
		for _, span := range inlineCode(readDoc(t, name)) {
			span = strings.TrimSuffix(span, "/")
			if !repoPathRE.MatchString(span) {
				continue
			}
			n++
			matches, err := filepath.Glob(filepath.Join(repoRoot, span))
			if err != nil || len(matches) == 0 {
				t.Errorf("docs/%s names `%s`, which does not exist", name, span)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d file references found: the extraction is broken", n)
	}
}

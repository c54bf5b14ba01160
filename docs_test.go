package pastry

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The documentation names only files that are in the repository: every
// relative Markdown link, and every backticked path with a directory and
// an extension, resolves (from the document's folder, or from the top).
func TestDocsNameOnlyFilesInTheRepository(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)#\s]+)`)
	path := regexp.MustCompile("`((?:[\\w.-]+/)+[\\w.-]+\\.(?:go|md|txt|proto|sh))`")
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".md") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dir := filepath.Dir(p)
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			if target := m[1]; !strings.Contains(target, "://") && !exists(filepath.Join(dir, target)) {
				t.Errorf("%s links to %s, which is not in the repository", p, target)
			}
		}
		for _, m := range path.FindAllStringSubmatch(string(b), -1) {
			if target := m[1]; !exists(filepath.Join(dir, target)) && !exists(target) {
				t.Errorf("%s names %s, which is not in the repository", p, target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

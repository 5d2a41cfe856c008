package lint

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageHasDocGo enforces STYLE.md: each package has a doc.go
// whose package comment says what the package is for.
func TestEveryPackageHasDocGo(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, top := range []string{"cmd", "internal", "test", "bench"} {
		_ = filepath.WalkDir(filepath.Join(root, top), func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || d.Name() == "testdata" {
				if d != nil && d.IsDir() && d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			files, _ := filepath.Glob(filepath.Join(path, "*.go"))
			var code []string
			for _, f := range files {
				if !strings.HasSuffix(f, "_test.go") {
					code = append(code, f)
				}
			}
			if len(code) == 0 {
				return nil
			}
			doc := filepath.Join(path, "doc.go")
			f, err := parser.ParseFile(token.NewFileSet(), doc, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Errorf("%s: no doc.go: %v", path, err)
				return nil
			}
			want := "Package " + f.Name.Name + " "
			if f.Name.Name == "main" {
				want = "Command "
			}
			if f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), want) {
				t.Errorf("%s: doc.go has no comment starting %q", doc, want)
			}
			return nil
		})
	}
}

package guard

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/buildguard/buildguard/source"
)

// readSource reads the source once: its tree digest (of the files git
// tracks, for a git checkout; of the whole tree otherwise), its
// repository and commit, and what the report must say about it (the
// uncommitted changes of a checkout). The evidence directory, when it lies
// inside the source, is left out.
func (g *run) readSource(ctx context.Context) (*source.Tree, error) {
	if g.source != nil {
		return g.source, nil
	}
	cfg := g.cfg
	exclude := ""
	if srcAbs, err := filepath.Abs(cfg.Source.Resolved); err == nil {
		if rel, err := filepath.Rel(srcAbs, g.opts.Out); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			exclude = filepath.ToSlash(rel)
		}
	}
	t, err := source.Read(ctx, cfg.Source.Resolved, source.Options{MaxEntries: cfg.Limits.OutputEntries, Exclude: exclude})
	if err != nil {
		return nil, fmt.Errorf("reading the source %s: %w", cfg.Source.Text, err)
	}
	g.source = t
	s := g.report.Source
	s.Digest = t.Manifest.Digest()
	if t.Git != nil {
		s.GitCommit, s.Repository, s.Uncommitted = t.Git.Commit, t.Git.URI, t.Git.Dirty()
	}
	g.report.Notes = append(g.report.Notes, t.Notes...)
	return t, nil
}

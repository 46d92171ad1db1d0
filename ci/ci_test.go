// Package ci holds the CI integrations (the GitHub Action at the root of
// the repository, a GitLab CI template, a Tekton Task). No CI service can
// run them here, so this test checks what a schema would: their structure,
// that every reference resolves, and that no input reaches a shell script
// unquoted. make lint also runs actionlint on the example workflow.
package ci

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func load(t *testing.T, path string, v any) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(data)
}

type action struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Branding    map[string]string
	Inputs      map[string]struct {
		Description string `yaml:"description"`
		Default     string `yaml:"default"`
		Required    bool   `yaml:"required"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			Name  string            `yaml:"name"`
			ID    string            `yaml:"id"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
			Run   string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

var exprRE = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

func TestGitHubAction(t *testing.T) {
	var a action
	load(t, "../action.yml", &a)
	if a.Name == "" || a.Description == "" || a.Runs.Using != "composite" || len(a.Runs.Steps) == 0 {
		t.Fatalf("not a composite action: %+v", a)
	}
	ids := map[string]bool{}
	for _, s := range a.Runs.Steps {
		if s.Shell == "" {
			t.Errorf("step %q has no shell (composite run steps need one)", s.Name)
		}
		if exprRE.MatchString(s.Run) {
			t.Errorf("step %q expands an expression inside its script (script injection): pass it through env", s.Name)
		}
		for _, v := range s.Env {
			for _, m := range exprRE.FindAllStringSubmatch(v, -1) {
				name, ok := strings.CutPrefix(m[1], "inputs.")
				if !ok || a.Inputs[name].Description == "" {
					t.Errorf("step %q uses %q, which is not a declared input", s.Name, m[1])
				}
			}
		}
		if s.ID != "" {
			ids[s.ID] = true
		}
	}
	for name, o := range a.Outputs {
		m := exprRE.FindStringSubmatch(o.Value)
		if m == nil || !strings.HasPrefix(m[1], "steps.") || !ids[strings.Split(m[1], ".")[1]] {
			t.Errorf("output %s = %q does not name a step of the action", name, o.Value)
		}
	}
	for _, want := range []string{"config", "key", "trusted-root", "rekor-url"} {
		if _, ok := a.Inputs[want]; !ok {
			t.Errorf("input %q is missing", want)
		}
	}
}

func TestGitLabTemplate(t *testing.T) {
	var doc map[string]struct {
		Image     string            `yaml:"image"`
		Variables map[string]string `yaml:"variables"`
		Script    []string          `yaml:"script"`
		Artifacts struct {
			When  string   `yaml:"when"`
			Paths []string `yaml:"paths"`
		} `yaml:"artifacts"`
	}
	load(t, "gitlab/buildguard.gitlab-ci.yml", &doc)
	job, ok := doc[".buildguard"]
	if !ok || len(job.Script) == 0 || job.Artifacts.When != "always" {
		t.Fatalf("the .buildguard job template is missing or incomplete: %+v", doc)
	}
	all := strings.Join(job.Script, "\n")
	for _, want := range []string{"buildguard pin --check", "buildguard \"$@\""} {
		if !strings.Contains(all, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	for _, m := range regexp.MustCompile(`\$\{?(BUILDGUARD_[A-Z_]+)`).FindAllStringSubmatch(all+job.Image, -1) {
		if _, ok := job.Variables[m[1]]; !ok && m[1] != "BUILDGUARD_IMAGE" {
			t.Errorf("script uses $%s, which the template does not declare", m[1])
		}
	}
}

func TestTektonTask(t *testing.T) {
	var task struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name        string            `yaml:"name"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Spec struct {
			Description string `yaml:"description"`
			Workspaces  []struct {
				Name        string `yaml:"name"`
				Description string `yaml:"description"`
			} `yaml:"workspaces"`
			Params []struct {
				Name        string `yaml:"name"`
				Type        string `yaml:"type"`
				Default     *string
				Description string `yaml:"description"`
			} `yaml:"params"`
			Results []struct {
				Name        string `yaml:"name"`
				Description string `yaml:"description"`
			} `yaml:"results"`
			Steps []struct {
				Name            string              `yaml:"name"`
				Image           string              `yaml:"image"`
				WorkingDir      string              `yaml:"workingDir"`
				SecurityContext map[string]any      `yaml:"securityContext"`
				Env             []map[string]string `yaml:"env"`
				Script          string              `yaml:"script"`
			} `yaml:"steps"`
		} `yaml:"spec"`
	}
	text := load(t, "tekton/buildguard-task.yaml", &task)
	if task.APIVersion != "tekton.dev/v1" || task.Kind != "Task" || task.Metadata.Name == "" || len(task.Spec.Steps) == 0 {
		t.Fatalf("not a Tekton v1 Task: %+v", task)
	}
	params, results, workspaces := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, p := range task.Spec.Params {
		params[p.Name] = true
	}
	for _, r := range task.Spec.Results {
		results[r.Name] = true
	}
	for _, w := range task.Spec.Workspaces {
		workspaces[w.Name] = true
	}
	for _, m := range regexp.MustCompile(`\$\((params|results|workspaces)\.([a-z-]+)`).FindAllStringSubmatch(text, -1) {
		known := map[string]map[string]bool{"params": params, "results": results, "workspaces": workspaces}[m[1]]
		if !known[m[2]] {
			t.Errorf("$(%s.%s) is not declared", m[1], m[2])
		}
	}
	if task.Spec.Steps[0].Image != "$(params.image)" || !strings.Contains(task.Spec.Steps[0].Script, "*@sha256:*") {
		t.Errorf("the step image must be the digest-checked image parameter")
	}
}

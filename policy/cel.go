package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"cel.dev/cel-go/cel"

	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
)

// ruleCostLimit bounds the work one rule may do on any input.
const ruleCostLimit = 10_000_000

// maxExprLen bounds a rule's source text.
const maxExprLen = 16 << 10

type rule struct {
	name, expr string
	prg        cel.Program
}

// newEnv declares the evidence model rules see (docs/policy.md).
func newEnv() (*cel.Env, error) {
	dyn := cel.DynType
	return cel.NewEnv(
		cel.Variable("images", cel.ListType(dyn)),
		cel.Variable("runs", cel.ListType(dyn)),
		cel.Variable("diverse", cel.ListType(dyn)),
		cel.Variable("mismatches", cel.ListType(dyn)),
		cel.Variable("dependencies", cel.ListType(dyn)),
		cel.Variable("sbom", cel.MapType(cel.StringType, dyn)),
		cel.Variable("source", cel.MapType(cel.StringType, dyn)),
		cel.Variable("sandbox", cel.MapType(cel.StringType, dyn)),
		cel.Variable("config", cel.MapType(cel.StringType, dyn)),
	)
}

// compile checks a rule: it must parse, type-check and be a boolean.
func compile(env *cel.Env, r config.Rule) (*rule, error) {
	if len(r.Expr) > maxExprLen {
		return nil, fmt.Errorf("expression longer than %d bytes", maxExprLen)
	}
	ast, iss := env.Compile(r.Expr)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("not a valid CEL expression: %w", iss.Err())
	}
	if !ast.OutputType().IsExactType(cel.BoolType) && ast.OutputType() != cel.DynType {
		return nil, fmt.Errorf("must be a boolean expression, is %s", ast.OutputType())
	}
	prg, err := env.Program(ast, cel.CostLimit(ruleCostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, fmt.Errorf("not a valid CEL program: %w", err)
	}
	return &rule{name: r.Name, expr: r.Expr, prg: prg}, nil
}

// eval runs the rule; anything but a boolean result is an error.
func (r *rule) eval(ctx context.Context, vars map[string]any) (bool, error) {
	out, _, err := r.prg.ContextEval(ctx, vars)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, errors.New("the result is not a boolean")
	}
	return b, nil
}

// variables builds the rules' input from the evidence. The values are the
// report's JSON encoding, so rules use the same field names as report.json.
func variables(in Input) (map[string]any, error) {
	r := in.Report
	var diverse []evidence.Run
	for _, run := range r.Runs {
		if run.Diverse {
			diverse = append(diverse, run)
		}
	}
	packages := in.Packages
	if packages == nil {
		packages = []Package{}
	}
	source := r.Source
	if source == nil {
		source = &evidence.Source{}
	}
	parts := map[string]any{
		"images":       r.Images,
		"runs":         r.Runs,
		"diverse":      diverse,
		"mismatches":   r.Mismatches,
		"dependencies": r.Dependencies,
		"sbom":         map[string]any{"packages": packages},
		"source":       source,
		"config":       in.Config,
		"sandbox":      weakestSandbox(r.Runs),
	}
	vars := map[string]any{}
	for name, v := range parts {
		j, err := toJSONValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		switch name {
		case "sbom", "source", "config", "sandbox":
			if j == nil {
				j = map[string]any{}
			}
		default:
			if j == nil {
				j = []any{}
			}
		}
		vars[name] = j
	}
	return vars, nil
}

func toJSONValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// weakestSandbox is the CEL variable sandbox: what every run that started
// had (a property holds only if it held for each of them), so that a rule
// such as `sandbox.seccomp && sandbox.userNamespace` speaks for the whole
// build. With no run started, nothing holds.
func weakestSandbox(runs []evidence.Run) map[string]any {
	all := func(f func(*evidence.Sandbox) bool) bool {
		n := 0
		for _, r := range runs {
			if r.Sandbox == nil {
				continue
			}
			if !f(r.Sandbox) {
				return false
			}
			n++
		}
		return n > 0
	}
	runtimes := []any{}
	seen := map[string]bool{}
	for _, r := range runs {
		if r.Sandbox != nil && !seen[r.Sandbox.Runtime+" "+r.Sandbox.Version] {
			seen[r.Sandbox.Runtime+" "+r.Sandbox.Version] = true
			runtimes = append(runtimes, r.Sandbox.Runtime+" "+r.Sandbox.Version)
		}
	}
	return map[string]any{
		"userNamespace": all(func(s *evidence.Sandbox) bool { return s.UserNamespace }),
		"ownersKept":    all(func(s *evidence.Sandbox) bool { return s.UserNamespace && s.IDMapping != "single" }),
		"noNetwork":     all(func(s *evidence.Sandbox) bool { return s.Network == "none" }),
		"seccomp":       all(func(s *evidence.Sandbox) bool { return s.Seccomp != "" }),
		"readOnlyRoot":  all(func(s *evidence.Sandbox) bool { return s.ReadOnlyRoot }),
		"rootless":      all(func(s *evidence.Sandbox) bool { return s.Rootless }),
		"limitsApplied": all(func(s *evidence.Sandbox) bool { return len(s.Limits.Applied) > 0 }),
		"runtimes":      runtimes,
	}
}

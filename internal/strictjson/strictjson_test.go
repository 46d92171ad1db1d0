package strictjson

import (
	"errors"
	"testing"
)

type doc struct {
	A int `json:"a"`
}

func TestDecode(t *testing.T) {
	var d doc
	if err := Decode([]byte(` {"a": 1} `+"\n"), 100, &d); err != nil || d.A != 1 {
		t.Fatalf("valid document: %v %+v", err, d)
	}
	for name, in := range map[string]string{
		"unknown field":       `{"a": 1, "b": 2}`,
		"trailing brace":      `{"a": 1}}`,
		"second value":        `{"a": 1} {"a": 2}`,
		"trailing garbage":    `{"a": 1} x`,
		"not json":            `a: 1`,
		"empty":               ``,
		"wrong type":          `{"a": "1"}`,
		"larger than the cap": `{"a": 1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000}`,
	} {
		if err := Decode([]byte(in), 100, &doc{}); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if err := Decode([]byte(`{"a":1} []`), 100, &doc{}); !errors.Is(err, ErrTrailingData) {
		t.Errorf("want ErrTrailingData, got %v", err)
	}
}

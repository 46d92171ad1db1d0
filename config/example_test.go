package config

import "testing"

// TestExampleLoads keeps the bundled example's buildguard.yaml valid.
func TestExampleLoads(t *testing.T) {
	c, err := Load("../examples/hello/buildguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	imgs := c.Images()
	if len(imgs) != 3 || imgs[0].Role != RoleBuilder || imgs[1].Role != RoleDiverse || imgs[2].Role != RoleBase {
		t.Errorf("example images = %+v; want builder, diverse, base", imgs)
	}
}

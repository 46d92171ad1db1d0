package evidence

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/buildguard/buildguard/internal/harness"
)

// The tests below open report.html in headless Chromium and assert on the
// page as rendered: the text a person sees (innerText honours CSS), whether
// the elements that carry the decision are laid out and visible, and that
// nothing an attacker wrote into the report runs.

// element is what the probe reports about one element.
type element struct {
	Text       string `json:"text"`
	Visible    bool   `json:"visible"`
	Background string `json:"background"`
}

// rendered is the page after Chromium loaded it.
type rendered struct {
	Text  string               `json:"text"`
	Pwned string               `json:"pwned"`
	Sel   map[string][]element `json:"sel"`
}

func (r *rendered) one(t *testing.T, sel string) element {
	t.Helper()
	if len(r.Sel[sel]) != 1 {
		t.Fatalf("%d elements match %s, want 1", len(r.Sel[sel]), sel)
	}
	return r.Sel[sel][0]
}

var probeSelectors = []string{"#headline", "#decision", "#glance", "tr.violation", ".image", "tr.run", "tr.run.disagree",
	"#diffs", ".explanation pre", "#sbom-packages", "#timings", "tr.stage", "#summary", "script"}

// probe runs in a test copy of the page (the page itself runs no script,
// and its Content-Security-Policy forbids any): after load, it records
// what the page shows in an attribute of <html>, which --dump-dom prints.
const probe = `<script>
window.addEventListener("load", function () {
  var out = {text: document.body.innerText, pwned: document.body.getAttribute("data-pwned") || "", sel: {}};
  SELECTORS.forEach(function (s) {
    out.sel[s] = Array.prototype.map.call(document.querySelectorAll(s), function (el) {
      var r = el.getBoundingClientRect(), cs = getComputedStyle(el);
      return {text: el.innerText, visible: r.width > 0 && r.height > 0 && cs.visibility === "visible" && cs.display !== "none",
        background: cs.backgroundColor};
    });
  });
  document.documentElement.setAttribute("data-probe", btoa(unescape(encodeURIComponent(JSON.stringify(out)))));
});
</script>`

const cspMeta = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`

var probeAttr = regexp.MustCompile(`data-probe="([A-Za-z0-9+/=]+)"`)

// dumpDOM loads page in headless Chromium and returns the DOM after load.
func dumpDOM(t *testing.T, chromium, page string) string {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--window-size=1200,900", "--user-data-dir="+filepath.Join(dir, "profile"), "--dump-dom", "file://"+file)
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// renderInChromium renders the page with the probe and returns what it saw.
func renderInChromium(t *testing.T, chromium, page string) *rendered {
	t.Helper()
	if !strings.Contains(page, cspMeta) || !strings.Contains(page, "</body>") {
		t.Fatalf("the page has no CSP meta or no </body> to put the probe before")
	}
	sels, err := json.Marshal(probeSelectors)
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Replace(page, cspMeta, "", 1)
	p = strings.Replace(p, "</body>", strings.Replace(probe, "SELECTORS", string(sels), 1)+"</body>", 1)
	dom := dumpDOM(t, chromium, p)
	m := probeAttr.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the probe did not run; DOM:\n%s", dom)
	}
	data, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	var r rendered
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.Pwned != "" {
		t.Errorf("attacker markup in the report ran (%s)", r.Pwned)
	}
	if n := len(r.Sel["script"]); n != 1 {
		t.Errorf("the page has %d script element(s) besides the probe", n-1)
	}
	return &r
}

func TestHTMLInChromium(t *testing.T) {
	chromium := harness.Require(t, "chromium")

	t.Run("fail", func(t *testing.T) {
		t.Parallel()
		r, diffs := failReport()
		page := render(t, r, timings(20), diffs)
		got := renderInChromium(t, chromium, page)

		h := got.one(t, "#headline")
		if !h.Visible || !strings.Contains(h.Text, "FAIL") {
			t.Errorf("headline %+v does not show FAIL", h)
		}
		if bg := got.one(t, "#decision").Background; bg != "rgb(179, 38, 30)" {
			t.Errorf("the decision banner is %s, not red", bg)
		}
		rows := got.Sel["tr.violation"]
		if len(rows) != len(r.Violations) {
			t.Fatalf("%d violation rows, want %d", len(rows), len(r.Violations))
		}
		for i, v := range r.Violations { // r is sorted by rendering
			if !rows[i].Visible || !strings.Contains(rows[i].Text, v.Rule) || !strings.Contains(rows[i].Text, v.Message) {
				t.Errorf("violation row %q does not show %s: %s", rows[i].Text, v.Rule, v.Message)
			}
		}
		checkImages(t, got, r)
		runs := got.Sel["tr.run"]
		if len(runs) != 3 {
			t.Fatalf("%d run rows, want 3", len(runs))
		}
		for i, run := range r.Runs {
			if !strings.Contains(runs[i].Text, run.OutputDigest) {
				t.Errorf("run row %q misses its output digest %s", runs[i].Text, run.OutputDigest)
			}
		}
		bad := got.one(t, "tr.run.disagree")
		if !strings.HasPrefix(bad.Text, "3") || !strings.Contains(bad.Text, "builder-disagreement") || !strings.Contains(bad.Text, outEvil) {
			t.Errorf("the disagreeing run is not marked: %q", bad.Text)
		}
		diff := got.one(t, "#diffs")
		for _, want := range []string{"run 1 vs run 3", "builder-disagreement", digDiverse, "section .text: 812 bytes in A, 1212 bytes in B", "symbol main.mine only in B", evilName, evilLine} {
			if !strings.Contains(diff.Text, want) {
				t.Errorf("the diff explanation does not show %q:\n%s", want, diff.Text)
			}
		}
		if pre := got.Sel[".explanation pre"]; len(pre) != 1 || !strings.Contains(pre[0].Text, evilLine) {
			t.Errorf("the unified diff is not shown as text: %+v", pre)
		}
		if s := got.one(t, "#sbom-packages"); s.Text != "17" || !s.Visible {
			t.Errorf("SBOM package count %+v", s)
		}
		tm := got.one(t, "#timings")
		if len(got.Sel["tr.stage"]) != 3 || !strings.Contains(tm.Text, "build") || !strings.Contains(tm.Text, "20s") {
			t.Errorf("durations section:\n%s", tm.Text)
		}
		if strings.Contains(got.Text, "published") && !strings.Contains(got.Text, "nothing was published") {
			t.Errorf("a failed build says it published")
		}

		// The page as shipped, with its Content-Security-Policy: no
		// script may run, not even one that got past escaping.
		evil := strings.Replace(page, "</body>", `<script>document.body.setAttribute("data-csp","ran")</script></body>`, 1)
		if dom := dumpDOM(t, chromium, evil); strings.Contains(dom, `data-csp="ran"`) || !strings.Contains(dom, "buildguard: FAIL") {
			t.Errorf("the page's Content-Security-Policy let an inline script run")
		}
	})

	t.Run("pass", func(t *testing.T) {
		t.Parallel()
		r := passReport()
		got := renderInChromium(t, chromium, render(t, r, timings(3), nil))
		h := got.one(t, "#headline")
		if !h.Visible || !strings.Contains(h.Text, "PASS") {
			t.Errorf("headline %+v does not show PASS", h)
		}
		if bg := got.one(t, "#decision").Background; bg != "rgb(19, 115, 51)" {
			t.Errorf("the decision banner is %s, not green", bg)
		}
		if n := len(got.Sel["tr.violation"]) + len(got.Sel["tr.run.disagree"]) + len(got.Sel["#diffs"]); n != 0 {
			t.Errorf("a passing build shows %d violation, disagreement or diff element(s)", n)
		}
		checkImages(t, got, r)
		for i, row := range got.Sel["tr.run"] {
			if !strings.Contains(row.Text, r.Runs[i].OutputDigest) || (i > 0 && !strings.Contains(row.Text, "same bits as the control")) {
				t.Errorf("run row %q", row.Text)
			}
		}
		if g := got.one(t, "#glance").Text; !strings.Contains(g, "every output identical") || !strings.Contains(g, "SBOM: 17 package(s)") {
			t.Errorf("summary lines:\n%s", g)
		}
		if s := got.one(t, "#summary").Text; !strings.Contains(s, "registry.example/app:v1@sha256:9999") {
			t.Errorf("the published image is not named: %q", s)
		}
	})
}

// checkImages asserts that each image's box shows its reference, digest
// and whether it was verified, with its problems.
func checkImages(t *testing.T, got *rendered, r *Report) {
	t.Helper()
	boxes := got.Sel[".image"]
	if len(boxes) != len(r.Images) {
		t.Fatalf("%d image boxes, want %d", len(boxes), len(r.Images))
	}
	for i, im := range r.Images {
		b := boxes[i]
		state := "not verified"
		if im.Verified {
			state = "verified"
		}
		if !b.Visible || !strings.Contains(b.Text, im.Role) || !strings.Contains(b.Text, im.Digest) || !strings.Contains(b.Text, state) {
			t.Errorf("image box %q does not show %s %s %s", b.Text, im.Role, im.Digest, state)
		}
		if im.Verified && strings.Contains(b.Text, "not verified") {
			t.Errorf("verified image %s shown as not verified", im.Ref)
		}
		for _, p := range im.Problems {
			if !strings.Contains(b.Text, p) {
				t.Errorf("image %s does not show its problem %q", im.Ref, p)
			}
		}
	}
}

package deps

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestGoProxies(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".config", "go", "env"), "GOFLAGS=-mod=mod\nGOPROXY=https://home.example\n")
	xdg := t.TempDir()
	writeFile(t, filepath.Join(xdg, "go", "env"), "GOPROXY = https://xdg.example|https://b.example\n")
	goenv := filepath.Join(t.TempDir(), "env")
	writeFile(t, goenv, "GOPROXY=https://goenv.example/sub/\n")
	for _, tc := range []struct {
		name string
		env  []string
		want []proxy
	}{
		{"default", nil, []proxy{{url: DefaultGoProxy}}},
		{"env", []string{"GOPROXY=https://a.example", "HOME=" + home}, []proxy{{url: "https://a.example"}}},
		{"empty env falls to the file", []string{"GOPROXY=", "HOME=" + home}, []proxy{{url: "https://home.example"}}},
		{"HOME file", []string{"HOME=" + home}, []proxy{{url: "https://home.example"}}},
		{"XDG before HOME", []string{"HOME=" + home, "XDG_CONFIG_HOME=" + xdg}, []proxy{{url: "https://xdg.example", anyError: true}, {url: "https://b.example"}}},
		{"GOENV before both", []string{"HOME=" + home, "XDG_CONFIG_HOME=" + xdg, "GOENV=" + goenv}, []proxy{{url: "https://goenv.example/sub"}}},
		{"GOENV=off", []string{"HOME=" + home, "GOENV=off"}, []proxy{{url: DefaultGoProxy}}},
		{"no file", []string{"HOME=" + t.TempDir()}, []proxy{{url: DefaultGoProxy}}},
		{"list, direct dropped", []string{"GOPROXY=https://a.example,direct"}, []proxy{{url: "https://a.example"}}},
		{"list syntax", []string{"GOPROXY=a.example|http://b.example:8080,off,https://c.example"}, []proxy{{url: "https://a.example", anyError: true}, {url: "http://b.example:8080"}, {url: "https://c.example"}}},
		{"last wins", []string{"GOPROXY=https://a.example", "GOPROXY=https://b.example"}, []proxy{{url: "https://b.example"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := goProxies(parseEnviron(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGoProxiesRefused(t *testing.T) {
	for _, v := range []string{"direct", "off", "direct,off", " , ", "file:///srv/proxy", "ftp://x.example", "https://x.example/?q=1"} {
		_, err := goProxies(parseEnviron([]string{"GOPROXY=" + v}))
		if !errors.Is(err, ErrConfig) {
			t.Errorf("GOPROXY=%q: got %v, want ErrConfig", v, err)
			continue
		}
		if strings.HasPrefix(v, "direct") && !strings.Contains(err.Error(), "version control") {
			t.Errorf("GOPROXY=%q: the message does not say why: %v", v, err)
		}
	}
	if _, err := goProxies(parseEnviron([]string{"GOENV=relative/env"})); !errors.Is(err, ErrConfig) {
		t.Errorf("a relative GOENV: got %v, want ErrConfig", err)
	}
}

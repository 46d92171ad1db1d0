package deps

// GoProxies returns the module proxies a prefetch of Go modules would fetch
// from, resolved from environ (as Options.Environ) exactly as Prefetch
// resolves them, without contacting them. The URLs may carry credentials.
func GoProxies(environ []string) ([]string, error) {
	ps, err := goProxies(parseEnviron(environ))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.url
	}
	return out, nil
}

// NPMRegistry returns the registry a prefetch of npm packages would fetch
// from, resolved from environ as Prefetch resolves it, without contacting
// it. Credentials are removed from the URL.
func NPMRegistry(environ []string) (string, error) {
	return npmRegistry(parseEnviron(environ))
}

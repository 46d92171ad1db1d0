// Package config loads buildguard.yaml, the versioned configuration of a
// guarded build, strictly.
//
// The file holds exactly one YAML document of at most MaxSize bytes and
// starts with "apiVersion: buildguard/v1" (APIVersion); a file of another
// version is refused with the version this buildguard reads, and not checked
// further. The field names are those of DESIGN.md and are a public
// interface:
//
//	apiVersion, source,
//	builder{image, command, workdir, env, timeout, runtime, limits{memory, pids}},
//	sourceDateEpoch,
//	reproduce{runs, variations, diverse[{image}]},
//	base, publish{image},
//	trust{trustedRoot, keys, identities[{issuer, issuerRegExp, subject, subjectRegExp}],
//	      insecureIgnoreTlog, rekor{url}, checkpoints},
//	policy{builderIDs, sourceURIs, requireVSA, requireDiverse, waive, rules[{name, expr}]},
//	limits{imageBytes, layers, tarEntries, pathLength, pathDepth, buildLogBytes,
//	       outputEntries, referrers, signatureManifestBytes, bundleBytes,
//	       bundleLogEntries, diffFiles, diffLines, diffFileBytes}
//
// Strictness: an unknown field, a duplicate key, a value of the wrong type,
// a YAML alias, merge key or non-core tag is an error; every problem is
// reported at once, sorted by line, each naming the file, the line and the
// full field path (such as "reproduce.diverse[1].image"), with "did you
// mean" for a misspelt field. Where a string is wanted any plain scalar is
// taken as the text it is written as ("CGO_ENABLED: 0", "[make, -j, 4]");
// booleans and integers must be YAML booleans and integers; null is the
// same as leaving a field out.
//
// Defaults (see SetDefaults): source ".", builder.workdir /src,
// builder.timeout 30m, builder.runtime auto, reproduce.runs 2, every
// variation. The limits section (InputLimits) is left at zero, which the
// packages that apply each limit read as their default. Relative paths (source, trust.trustedRoot, trust.keys,
// trust.checkpoints) are resolved against the directory of the file; the
// text as written is kept beside, and is what JSON shows.
//
// An image without a digest is not a configuration error: the pin check
// makes it a fail decision later. Only malformed references are refused
// here, and a digest on publish.image (a destination).
//
// Every error is an Errors value of *Error; errors.Is(err, ErrInvalid)
// holds and ExitCode reports 2, the exit code of a configuration error.
package config

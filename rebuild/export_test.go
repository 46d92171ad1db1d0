package rebuild

// Apply is Options.apply, for the external tests.
var Apply = Options.apply

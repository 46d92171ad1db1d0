package pin

import "math/rand"

// rngSource makes seeded fixtures: the same seed, the same image bytes.
func rngSource(seed int64) rand.Source { return rand.NewSource(seed) }

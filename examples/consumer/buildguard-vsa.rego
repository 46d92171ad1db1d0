# A consumer's policy for cosign v3's verify-attestation --policy: the image
# is admitted only if a buildguard VSA about it says PASSED.
#
#   cosign verify-attestation --key signing.pub \
#       --type https://slsa.dev/verification_summary/v1 \
#       --policy examples/consumer/buildguard-vsa.rego REF@DIGEST
#
# cosign first verifies each attestation's signature with the key and that
# its subject is the image's digest; it then evaluates data.signature.allow
# (Rego v0 syntax, as cosign loads it) with the in-toto statement as input,
# for every attestation of the type. One that is not allowed refuses the
# image. Tested by e2e/publish_scripts/consumer_policy.txtar.
package signature

default allow = false

buildguard_verifier = "https://github.com/buildguard/buildguard/verifier/v1"

buildguard_level = "BUILDGUARD_GUARDED_BUILD_V1"

allow {
	input.predicateType == "https://slsa.dev/verification_summary/v1"
	input.predicate.verificationResult == "PASSED"
	input.predicate.verifier.id == buildguard_verifier
	input.predicate.verifiedLevels[_] == buildguard_level

	# The VSA names the image it is about, by digest: the statement's one
	# subject (which cosign has checked is the image being admitted).
	count(input.subject) == 1
	digest := input.subject[0].digest.sha256
	startswith(input.predicate.resourceUri, "oci://")
	endswith(input.predicate.resourceUri, concat("", ["@sha256:", digest]))
}

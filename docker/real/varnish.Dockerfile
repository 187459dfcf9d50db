# The official varnish image, unchanged: a build file only so that the compose override can
# replace the stack's `build` (compose has no way to delete it); the VCL is mounted.
FROM varnish:7.6

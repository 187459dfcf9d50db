# The official nginx image, unchanged: a build file only so that the compose override can
# replace the stack's `build` (compose has no way to delete it); nginx.conf and the static
# files are mounted.
FROM nginx:stable-bookworm

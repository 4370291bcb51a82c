#!/bin/sh
# The image's ENTRYPOINT. With s6-overlay installed and this process PID 1, /init runs the
# oneshots, including the ownership repair, then `hermes-shim entrypoint` as the main program,
# under with-contenv: /init hands its CMD only PATH (S6_KEEP_ENV=0), and with-contenv restores
# the container's environment (ENV, -e, --env-file) from /run/s6/container_environment.
# Otherwise (the image without s6-overlay, `docker run --init`, or `docker run --user`, since
# /init needs root to set up /run) the applet runs directly: it repairs ownership itself and,
# as PID 1, stays a minimal init for the program. Either way the arguments are the main
# program's: none -> hermes, a program on PATH -> that program, anything else -> hermes ARGS.
if [ "$$" = 1 ] && [ -x /init ] && [ "$(id -u)" = 0 ]; then
    exec /init /command/with-contenv /opt/hermes/bin/hermes-shim entrypoint "$@"
fi
exec /opt/hermes/bin/hermes-shim entrypoint "$@"

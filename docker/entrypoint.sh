#!/bin/sh
# The image's ENTRYPOINT. With s6-overlay installed and this process PID 1, /init runs the
# oneshots, including the ownership repair, then `hermes-shim entrypoint` as the main program.
# Otherwise (the offline build without s6-overlay, or `docker run --init`, where /init cannot be
# PID 1) the applet runs directly and does the repair itself. Either way the arguments are the
# main program's: none -> hermes, a program on PATH -> that program, anything else -> hermes ARGS.
# /init needs root (it sets up /run); under `docker run --user` the applet runs without it.
if [ "$$" = 1 ] && [ -x /init ] && [ "$(id -u)" = 0 ]; then
    exec /init /opt/hermes/bin/hermes-shim entrypoint "$@"
fi
exec /opt/hermes/bin/hermes-shim entrypoint "$@"

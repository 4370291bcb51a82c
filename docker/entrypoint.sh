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
    # docker stop: by default /init's shutdown SIGTERMs every process at once and then waits
    # S6_KILL_GRACETIME (3 s) in full, even when nothing is left (measured: from 0.2 s after the
    # stop only s6-svscan and its shutdown daemon remained), and that wait is also the main
    # program's only time to finish. With S6_CMD_RECEIVE_SIGNALS the stop signal goes to the main
    # program first and the shutdown starts when it has ended, its time bounded by docker stop's
    # own timeout; the last wait then guards only stragglers, so 500 ms. s6 runs such a main
    # program in the background with stdin from /dev/null, so only when stdin is /dev/null
    # already (no -i or -t: compose, Kubernetes, detached runs); an operator's setting wins.
    if [ -z "${S6_CMD_RECEIVE_SIGNALS+set}" ] && [ "$(readlink /proc/self/fd/0)" = /dev/null ]; then
        S6_CMD_RECEIVE_SIGNALS=1
        S6_KILL_GRACETIME="${S6_KILL_GRACETIME:-500}"
        export S6_CMD_RECEIVE_SIGNALS S6_KILL_GRACETIME
    fi
    exec /init /command/with-contenv /opt/hermes/bin/hermes-shim entrypoint "$@"
fi
exec /opt/hermes/bin/hermes-shim entrypoint "$@"

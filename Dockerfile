# Hermes Agent image with hermes-shim: `docker exec <c> hermes ...` as root runs as the hermes
# user, and ownership under /opt/data is repaired once per container start.
#
# Production build (needs a registry, PyPI, crates.io and GitHub):
#   docker build -t hermes .
# Offline build (this repository's CI; docker/build-image.sh prepares the context):
#   --build-arg BASE_IMAGE=<local Debian 13 (or 12) image with python3, python3-venv, xz-utils>
#   --build-arg SHIM_FROM=host-binary      (dist/hermes-shim from the context, no Rust image)
#   --build-arg VENV_FROM=venv-wheelhouse  (dist/wheelhouse/ from the context, no PyPI)
#   or VENV_FROM=venv-source               (hermes-agent built from dist/agent/: an sdist or a
#                                           source tree; the rest from dist/wheelhouse/)
#   or VENV_FROM=venv-cross                (dist/wheelhouse/ for another architecture, installed
#     --build-arg BUILD_BASE_IMAGE=<the same base for the build machine's architecture>
#                                           by the build machine's pip, not an emulated one)
#   --build-arg S6_FROM=no-s6-overlay      (no /init; the entrypoint applet repairs ownership itself)
#   or, for the production flavour without GitHub:
#   --build-arg S6_TARBALLS=s6-tarballs-context  (dist/s6/s6-overlay-{noarch,x86_64}.tar.xz from the
#                                                  context, same sha256 checks; override the
#                                                  S6_OVERLAY_*_SHA256 args for a local s6 build)
# The *_FROM arguments name stages of this file; BuildKit (required: DOCKER_BUILDKIT=1) builds
# only the stages the target needs, where the classic builder would build them all.

ARG BASE_IMAGE=debian:trixie-slim
ARG BUILD_BASE_IMAGE=${BASE_IMAGE}
ARG RUST_IMAGE=rust:1-bookworm
ARG SHIM_FROM=builder
ARG VENV_FROM=venv-pypi
ARG S6_FROM=s6-overlay
ARG S6_TARBALLS=s6-tarballs-download

FROM ${RUST_IMAGE} AS builder
# The source revision `hermes-shim --version` names (there is no .git in the context).
ARG HERMES_SHIM_REVISION=""
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY docker/shim-order.txt docker/shim-rustflags.sh ./docker/
# Static and non-PIE, for the target only so proc-macros still build (docker/shim-rustflags.sh
# writes the flags for this stage and docker/build-shim.sh alike; build-shim.sh says why): the
# shim's own exec is pure overhead in front of every `docker exec … hermes`; a static binary
# skips the loader, a non-PIE one its self-relocation, and on x86_64 (linked by lld) the
# functions it runs sit side by side (docker/shim-order.sh). This image's Rust moves on, and
# with it the names in the list: names it no longer has are skipped here, and a toolchain whose
# linker refuses the list builds without it.
RUN triple="$(rustc -vV | sed -n 's/^host: //p')" \
    && flags="$(docker/shim-rustflags.sh | paste -sd ' ')" \
    && ordered="$(docker/shim-rustflags.sh --order /src/docker/shim-order.txt --lenient | paste -sd ' ')" \
    && export HERMES_SHIM_REVISION \
    && { { [ "$triple" = x86_64-unknown-linux-gnu ] && RUSTFLAGS="$ordered" cargo build --release --locked --target "$triple"; } \
         || RUSTFLAGS="$flags" cargo build --release --locked --target "$triple"; } \
    && install -D -m 0755 "target/$triple/release/hermes-shim" /out/hermes-shim

FROM scratch AS host-binary
COPY dist/hermes-shim /out/hermes-shim

FROM ${SHIM_FROM} AS shim

# The binary alone, for other images (`docker build --target binary -t hermes-shim-binary .`):
#   COPY --from=hermes-shim-binary /hermes-shim /opt/hermes/bin/hermes-shim
FROM scratch AS binary
COPY --from=shim /out/hermes-shim /hermes-shim

# The runtime base: python3 with venv support and CA certificates. The offline base image already
# has them (apt-get would need the network), so install only what is missing.
FROM ${BASE_IMAGE} AS runtime-base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN if ! dpkg-query -W python3 python3-venv ca-certificates >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# The venv is built in its own stage (same base, same path) so wheels never reach the image.
FROM runtime-base AS venv-pypi
ARG HERMES_AGENT_VERSION=0.19.0
RUN python3 -m venv /opt/hermes/.venv \
    && /opt/hermes/.venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        "hermes-agent==${HERMES_AGENT_VERSION}"

FROM runtime-base AS venv-wheelhouse
ARG HERMES_AGENT_VERSION=0.19.0
COPY dist/wheelhouse/ /wheels/
RUN python3 -m venv /opt/hermes/.venv \
    && /opt/hermes/.venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --no-index --find-links /wheels "hermes-agent==${HERMES_AGENT_VERSION}"

# The venv for a foreign TARGETARCH (buildx, or docker build --platform under qemu-user),
# installed by the build machine's own Python: pip under emulation takes tens of minutes, this
# seconds. _PYTHON_HOST_PLATFORM makes pip take the target's wheels; everything else pip writes
# (paths, scripts, bytecode) is the same on every architecture for one Python version, so
# BUILD_BASE_IMAGE must be BASE_IMAGE's release for the build machine: checked by comparing their
# python3 packages, which no emulated code is needed to read. (A registry base such as
# debian:trixie-slim is multi-architecture: the default, BASE_IMAGE itself, then just works.)
# hadolint ignore=DL3006
FROM --platform=$BUILDPLATFORM ${BUILD_BASE_IMAGE} AS venv-cross
ARG HERMES_AGENT_VERSION=0.19.0
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=runtime-base /var/lib/dpkg/status /tmp/target-dpkg-status
COPY dist/wheelhouse/ /wheels/
# hadolint ignore=DL3008
RUN if ! dpkg-query -W python3 python3-venv >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && case "$TARGETARCH" in \
        amd64) platform=linux-x86_64 ;; \
        arm64) platform=linux-aarch64 ;; \
        *) echo "venv-cross: no pip platform known for TARGETARCH=$TARGETARCH" >&2; exit 1 ;; \
    esac \
    && want=$(awk '/^Package: /{p=$2} p=="python3" && /^Version: /{print $2; exit}' /tmp/target-dpkg-status) \
    && have=$(dpkg-query -W -f '${Version}' python3) \
    && if [ "$want" != "$have" ]; then \
        echo "venv-cross: BASE_IMAGE has python3 $want, BUILD_BASE_IMAGE $have: give BUILD_BASE_IMAGE the same Debian release" >&2; \
        exit 1; \
    fi \
    && rm /tmp/target-dpkg-status \
    && python3 -m venv /opt/hermes/.venv \
    && _PYTHON_HOST_PLATFORM="$platform" /opt/hermes/.venv/bin/pip install --no-cache-dir \
        --disable-pip-version-check --no-index --find-links /wheels "hermes-agent==${HERMES_AGENT_VERSION}"

# hermes-agent built from its source (VENV_FROM=venv-source): dist/agent/ in the context holds an
# sdist (*.tar.gz) or a source tree, upstream's way now that PyPI's newest wheel is behind; its
# dependencies and its build backend (setuptools) come from dist/wheelhouse/, as above.
FROM runtime-base AS venv-source
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY dist/wheelhouse/ /wheels/
COPY dist/agent/ /src/agent/
RUN shopt -s nullglob \
    && sdists=(/src/agent/*.tar.gz) \
    && if [ "${#sdists[@]}" -eq 1 ]; then src="${sdists[0]}"; \
       elif [ -f /src/agent/pyproject.toml ]; then src=/src/agent; \
       else echo "dist/agent/ holds neither one sdist (*.tar.gz) nor a source tree (pyproject.toml)" >&2; exit 1; fi \
    && python3 -m venv /opt/hermes/.venv \
    && /opt/hermes/.venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --no-index --find-links /wheels "$src"

FROM ${VENV_FROM} AS venv

# s6-overlay's two release tarballs (noarch, and the one for this architecture), as
# /tmp/s6/noarch.tar.xz and /tmp/s6/arch.tar.xz, from one of two sources: the release download,
# or (S6_TARBALLS=s6-tarballs-context) the release file names in the build context's dist/s6/,
# for air-gapped builds. Either way they are checked against the same sha256 build args below.
FROM runtime-base AS s6-tarballs-download
ARG S6_OVERLAY_VERSION=3.2.3.2
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /tmp/s6
RUN arch="$(uname -m)" \
    && url="https://github.com/just-containers/s6-overlay/releases/download/v${S6_OVERLAY_VERSION}" \
    && curl -fsSLo noarch.tar.xz "${url}/s6-overlay-noarch.tar.xz" \
    && curl -fsSLo arch.tar.xz "${url}/s6-overlay-${arch}.tar.xz"

FROM runtime-base AS s6-tarballs-context
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY dist/s6/ /tmp/s6/dist/
WORKDIR /tmp/s6
RUN mv "dist/s6-overlay-noarch.tar.xz" noarch.tar.xz \
    && mv "dist/s6-overlay-$(uname -m).tar.xz" arch.tar.xz \
    && rm -rf dist

FROM ${S6_TARBALLS} AS s6-tarballs

# One verification and one extraction for both sources. The pins default to the published
# sha256 of the 3.2.3.2 release assets; a mirror of the release passes as is, a local build of
# s6-overlay passes its own sums.
FROM s6-tarballs AS s6-overlay-root
ARG S6_OVERLAY_NOARCH_SHA256=5379750ed30a84bbd2e2dd74847ba6b5bd29cd0b2e3ea2ec58049b57eb2eda12
ARG S6_OVERLAY_X86_64_SHA256=e6befcc96a437a3831386ecfc51808c5d3e939dc5fe3c02ae9284599e8aa2408
ARG S6_OVERLAY_AARCH64_SHA256=b17f17a82e7a515c682a91edaf2ffdabb73f891981b6c1fd712115693a2f8b4c
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN if ! command -v xz >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends xz-utils \
        && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /tmp/s6
# The architecture of the stage itself, so an unset TARGETARCH can never pick the wrong /init.
RUN case "$(uname -m)" in \
        x86_64) arch_sha="${S6_OVERLAY_X86_64_SHA256}" ;; \
        aarch64) arch_sha="${S6_OVERLAY_AARCH64_SHA256}" ;; \
        *) echo "no pinned s6-overlay for $(uname -m)" >&2; exit 1 ;; \
    esac \
    && printf '%s  noarch.tar.xz\n%s  arch.tar.xz\n' "${S6_OVERLAY_NOARCH_SHA256}" "${arch_sha}" \
        | sha256sum -c - \
    && mkdir /s6root \
    && tar -C /s6root -Jxpf noarch.tar.xz \
    && tar -C /s6root -Jxpf arch.tar.xz

# The two bases the image can start from; s6-overlay goes in first so that the tree this
# repository ships is laid over it, never the other way round.
FROM runtime-base AS s6-overlay
COPY --from=s6-overlay-root /s6root/ /

FROM runtime-base AS no-s6-overlay

FROM ${S6_FROM}
ENV HERMES_HOME=/opt/data \
    PATH=/opt/hermes/bin:/opt/hermes/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    S6_BEHAVIOUR_IF_STAGE2_FAILS=1 \
    S6_CMD_WAIT_FOR_SERVICES_MAXTIME=0 \
    HERMES_GATEWAY_NO_SUPERVISE=1
# docker stop under s6-overlay: /init's shutdown waited S6_KILL_GRACETIME (3 s) in full on every
# stop, though 0.2 s in nothing but s6 itself was left (measured), and that wait was also all the
# time the main program (the gateway) had to finish. docker/entrypoint.sh sets
# S6_CMD_RECEIVE_SIGNALS=1 (when stdin is /dev/null): the gateway gets the stop signal first and
# has docker stop's own timeout to finish; then 500 ms S6_KILL_GRACETIME only catches stragglers.
# s6-rc services (upstream runs its gateway as one) are stopped before that wait, on their own
# timeouts, so shortening it takes no time from them.
# HERMES_GATEWAY_NO_SUPERVISE: the gateway is this image's main program (`docker run IMAGE gateway
# run`); seeing s6-svscan as PID 1, hermes would otherwise hand it to an s6 service
# `gateway-default` that the image does not register, and exit 1.
# As upstream: uid 10000, home = the data volume. The shim looks the user up at run time, so a
# boot-time uid remap needs no rebuild.
RUN useradd -u 10000 -m -d /opt/data hermes
COPY --from=venv /opt/hermes/.venv /opt/hermes/.venv
COPY --from=shim /out/hermes-shim /opt/hermes/bin/hermes-shim
# Each console script of hermes-agent (hermes, hermes-agent, hermes-acp in 0.19.0) goes through
# the shim first: a symlink per name, read from the distribution's entry_points.txt.
# /usr/bin/tini is the binary's tini applet, for guides and compose files written for upstream's
# `tini -- …`; like tini it runs the program as the caller (`tini -- hermes` drops via the shim).
RUN /opt/hermes/bin/hermes-shim install \
    && ln -s /opt/hermes/bin/hermes-shim /usr/bin/tini
COPY s6-overlay/ /etc/s6-overlay/
COPY docker/entrypoint.sh /opt/hermes/entrypoint.sh
VOLUME /opt/data
# Not the data volume: a root `docker exec` starts in WORKDIR, and Python (`python3 -m …`) imports
# from its working directory first, so the agent's files there would run as root.
WORKDIR /opt/hermes
ENTRYPOINT ["/opt/hermes/entrypoint.sh"]
CMD []

#!/usr/bin/env bash
# Marks a local image as built for another architecture: `docker save`, the config's
# `architecture` rewritten (the config is content-addressed, so it is renamed to its new sha256
# and the manifest follows), `docker load` under the same tag. The layers are untouched.
# Docker 20.10's `docker import --platform` records the engine's own architecture whatever it is
# given, and BuildKit refuses such a base for a foreign --platform.
#   usage: docker/set-image-arch.sh TAG DEBIAN_ARCH     (arm64, amd64)
set -euo pipefail

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
LOG_PREFIX=set-image-arch
[ "$#" -eq 2 ] || die "usage: $0 TAG DEBIAN_ARCH"
tag=$1
arch=$2

mkdir -p "$CACHE_DIR"
work=$(mktemp -d "$CACHE_DIR/set-image-arch.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
docker save -o "$work/in.tar" "$tag"
/usr/bin/python3 - "$work/in.tar" "$work/out.tar" "$arch" "$tag" <<'PY'
import hashlib, io, json, sys, tarfile

src, dst, arch, tag = sys.argv[1:]
with tarfile.open(src) as tin:
    manifest = json.load(tin.extractfile("manifest.json"))
    if len(manifest) != 1:
        sys.exit(f"{src}: {len(manifest)} images in one save, expected 1")
    old = manifest[0]["Config"]
    config = json.load(tin.extractfile(old))
    config["architecture"] = arch
    config.pop("variant", None)
    if arch == "arm64":
        config["variant"] = "v8"
    blob = json.dumps(config, separators=(",", ":")).encode()
    new = hashlib.sha256(blob).hexdigest() + ".json"
    manifest[0]["Config"] = new
    manifest[0]["RepoTags"] = [tag]

    def add(tout, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        tout.addfile(info, io.BytesIO(data))

    with tarfile.open(dst, "w") as tout:
        for member in tin.getmembers():
            if member.name in (old, "manifest.json", "repositories"):
                continue
            tout.addfile(member, tin.extractfile(member) if member.isfile() else None)
        add(tout, new, blob)
        add(tout, "manifest.json", json.dumps(manifest).encode())
PY
docker load -q -i "$work/out.tar" >/dev/null
got=$(docker image inspect -f '{{.Architecture}}' "$tag")
[ "$got" = "$arch" ] || die "$tag is still marked $got after the reload"

#!/usr/bin/env bash
# Builds the container image of imageplane with the machine's Docker, pulling nothing: an
# image FROM scratch holding only the binary, the shared libraries it links, CA
# certificates, and a non-root user (uid/gid 10001) owning /data, the state's volume.
#
#   scripts/build-image.sh [TAG]    # TAG: $IMAGEPLANE_IMAGE, else imageplane:dev
#
# IMAGEPLANE_BINARY=PATH puts that binary in the image instead of running
# `cargo build --release`.
set -euo pipefail
tag=${1:-${IMAGEPLANE_IMAGE:-imageplane:dev}}
binary=${IMAGEPLANE_BINARY:+$(realpath "$IMAGEPLANE_BINARY")} # before the cd: it may be relative
cd "$(dirname "$0")/.."

if [[ -z "$binary" ]]; then
    cargo build --release
    binary=target/release/imageplane
fi
[[ -x "$binary" ]] || { echo "build-image: $binary is not an executable" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/rootfs
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$stage/data"

# The binary, without its debug info (its symbols stay, so a panic's backtrace still names
# functions): a fraction of the size.
cp "$binary" "$root/usr/local/bin/imageplane"
if command -v strip >/dev/null; then strip --strip-debug "$root/usr/local/bin/imageplane"; fi
chmod 0755 "$root/usr/local/bin/imageplane"

# Exactly the shared libraries it links, at the paths ldd resolves them to, the dynamic
# loader included (linux-vdso has no path: the kernel provides it).
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

# CA certificates (https imports also trust the public roots built into the binary).
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"

# The user it runs as, and a world-writable /tmp.
printf 'root:x:0:0:root:/root:/sbin/nologin\nimageplane:x:10001:10001:imageplane:/data:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nimageplane:x:10001:\n' >"$root/etc/group"
mkdir -m 1777 "$root/tmp"

# Everything is root's but /data, the user's: a new volume on /data takes its owner.
cat >"$stage/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
COPY --chown=10001:10001 data/ /data/
USER 10001:10001
ENV IMAGEPLANE_LISTEN=0.0.0.0:9090 IMAGEPLANE_DATA_DIR=/data
VOLUME /data
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/imageplane"]
CMD ["serve"]
EOF

# The classic builder: it needs no buildx plugin and, FROM scratch, pulls nothing. Its
# output (a notice that it is deprecated) is shown only when the build fails.
if ! out=$(DOCKER_BUILDKIT=0 docker build --tag "$tag" "$stage" 2>&1); then
    echo "$out" >&2
    exit 1
fi
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "built $tag: $((size / 1000000)) MB ($size bytes)"

#!/bin/sh
# Builds the Debian package vpnlb_<version>_<arch>.deb with dpkg-deb (no debhelper needed):
#
#   sh packaging/deb/build-deb.sh [--no-build] [OUTDIR]     (default OUTDIR: dist-deb/)
#
# --no-build packs the tree as it is (dist/ and the native addons already built): the tests use
# it, as they run from that dist/ and must not see it rebuilt under them.
#
# Layout of the package:
#   /usr/lib/vpnlb/                 the program as `npm pack` ships it (bin, dist/src, dist/lab,
#                                   package.json), its production node_modules (npm ci
#                                   --omit=dev from the lockfile) and the native addons built
#                                   by scripts/setup.sh (stripped), hence Architecture: amd64
#   /usr/bin/vpnlb                  -> ../lib/vpnlb/bin/vpnlb.js
#   /etc/vpnlb/vpnlb.yaml           conffile: examples/rras-farm.yaml, to edit
#   /lib/systemd/system/vpnlb.service   packaging/vpnlb.service (hardened, not enabled)
#   /usr/share/doc/vpnlb/           README, docs/*.md, examples, copyright, changelog
#   /usr/share/man/man1/vpnlb.1.gz, /usr/share/lintian/overrides/vpnlb (each override explained)
# Maintainer scripts (this directory): preinst checks Node.js >= 20, postinst adds the system
# user vpnlb, prerm removes the kernel state (`vpnlb stop`), postrm purges user and state.
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/packaging/deb
BUILD=1
if [ "${1:-}" = "--no-build" ]; then BUILD=0; shift; fi
OUT=${1:-$REPO/dist-deb}
cd "$REPO"

command -v dpkg-deb >/dev/null 2>&1 || { echo "build-deb: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 1; }
VERSION=$(node -p 'require("./package.json").version')
ARCH=$(dpkg --print-architecture)

# The build (npm packages, native addons, tsc), as the README's commands do it.
if [ "$BUILD" = 1 ]; then sh scripts/setup.sh >&2; fi
[ -f dist/src/cli/run-cli.js ] || { echo "build-deb: dist/ is missing (run without --no-build)" >&2; exit 1; }

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/vpnlb-deb-XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
LIB=$ROOT/usr/lib/vpnlb
DOC=$ROOT/usr/share/doc/vpnlb
mkdir -p "$LIB" "$DOC" "$ROOT/usr/bin" "$ROOT/etc/vpnlb" "$ROOT/lib/systemd/system" "$ROOT/DEBIAN" \
  "$ROOT/usr/share/man/man1" "$ROOT/usr/share/lintian/overrides"

# 1. What the npm package ships ("files" in package.json), then its production dependencies.
npm pack --silent --pack-destination "$STAGE" >/dev/null
tar -xzf "$STAGE"/vpnlb-"$VERSION".tgz -C "$STAGE"
cp -a "$STAGE/package/." "$LIB/"
cp package-lock.json "$LIB/"
(cd "$LIB" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
# Documentation lives in /usr/share/doc (Debian policy §12.3), not beside the code.
mv "$LIB/README.md" "$LIB/docs" "$DOC/"
mv "$LIB/examples" "$DOC/examples"
rm -rf "$LIB/LICENSE" "$LIB/package-lock.json" "$LIB/packaging"
# Only what runs: no markdown, typings, maps, web pages (which load scripts from CDNs),
# repository files or test directories of the modules.
find "$LIB/node_modules" -type f \( -name '*.md' -o -name '*.markdown' -o -name '*.ts' -o -name '*.map' -o -name '*.html' \
  -o -name '.npmignore' -o -name '.gitattributes' -o -name '.eslintrc*' -o -name '.travis.yml' -o -name '*.sh' \) -delete
find "$LIB/node_modules" -type d \( -name test -o -name tests -o -name example -o -name examples -o -name benchmarks -o -name .husky -o -name .github \) -prune -exec rm -rf {} +
find "$LIB/node_modules" -type d -empty -delete

# 2. The native addons (optional at run time: vpnlb falls back to JavaScript without them).
for addon in native/*/build/Release/*.node; do
  [ -f "$addon" ] || continue
  mkdir -p "$LIB/$(dirname "$addon")"
  cp "$addon" "$LIB/$addon"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$LIB/$addon"
  chmod 0644 "$LIB/$addon"
done

# 3. Command, configuration, unit, documentation.
ln -s ../lib/vpnlb/bin/vpnlb.js "$ROOT/usr/bin/vpnlb"
cp examples/rras-farm.yaml "$ROOT/etc/vpnlb/vpnlb.yaml"
cp packaging/vpnlb.service "$ROOT/lib/systemd/system/vpnlb.service"
gzip -9n <"$HERE/vpnlb.1" >"$ROOT/usr/share/man/man1/vpnlb.1.gz"
cp "$HERE/lintian-overrides" "$ROOT/usr/share/lintian/overrides/vpnlb"
# The bundled modules, name version and license, from npm's record of what it installed.
node -e '
  const lock = require(process.argv[1]);
  for (const [path, p] of Object.entries(lock.packages ?? {})) {
    if (!path) continue;
    console.log(` ${path.replace(/^.*node_modules\//, "")} ${p.version}: ${p.license ?? "see its directory"}`);
  }' "$LIB/node_modules/.package-lock.json" | LC_ALL=C sort -u >"$STAGE/bundled"
sed -e "/@BUNDLED@/{r $STAGE/bundled" -e 'd;}' "$HERE/copyright" >"$DOC/copyright"
rm -f "$LIB/node_modules/.package-lock.json"
DATE=$(git log -1 --format=%aD 2>/dev/null || date -R)
printf 'vpnlb (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- vpnlb maintainers <vpnlb@example.org>  %s\n' \
  "$VERSION" "$(git describe --always --dirty 2>/dev/null || echo 'a source tree')" "$DATE" | gzip -9n >"$DOC/changelog.gz"

# 4. Control files. Modes: 0755 directories and executables, 0644 the rest (dpkg-deb builds
# with --root-owner-group, so everything is owned by root).
for f in preinst postinst prerm postrm; do install -m 0755 "$HERE/$f" "$ROOT/DEBIAN/$f"; done
echo /etc/vpnlb/vpnlb.yaml >"$ROOT/DEBIAN/conffiles"
find "$ROOT" -path "$ROOT/DEBIAN" -prune -o -type d -exec chmod 0755 {} +
find "$ROOT" -path "$ROOT/DEBIAN" -prune -o -type f -exec chmod 0644 {} +
chmod 0755 "$LIB/bin/vpnlb.js"
# Scripts of the modules that carry a shell line stay executable (their package.json "bin").
grep -rlZ --include='*.js' --include='*.mjs' --include='*.cjs' -m1 '^#!' "$LIB/node_modules" | xargs -0r chmod 0755
# The native addons link against glibc: the newest symbol version they use is the minimum.
GLIBC=$(for f in "$LIB"/native/*/build/Release/*.node; do [ -f "$f" ] && objdump -T "$f"; done | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
LIBC_DEP=${GLIBC:+libc6 (>= $GLIBC), }
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@LIBC@/$LIBC_DEP/" "$HERE/control.in" >"$ROOT/DEBIAN/control"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort | xargs -d '\n' md5sum) >"$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/conffiles" "$ROOT/DEBIAN/md5sums"

mkdir -p "$OUT"
DEB=$OUT/vpnlb_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >&2
echo "$DEB"

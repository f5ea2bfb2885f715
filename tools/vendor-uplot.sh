#!/usr/bin/env bash
# Vendors uPlot (the console's time-series charts) from the npm registry into console/static/vendor/uplot:
# the minified browser build, its stylesheet and its licence. Run at build time only (needs npm);
# the files are committed, so neither running nor installing infersight needs Node.js.
# `npm pack` checks the tarball against the registry's sha512 integrity before it writes it.
set -euo pipefail
VERSION="${1:-1.6.32}"
cd "$(dirname "$0")/.."
out=console/static/vendor/uplot
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@${VERSION}" >/dev/null && tar -xzf "uplot-${VERSION}.tgz")
mkdir -p "$out"
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$work/package/LICENSE" "$out/"
integrity="$(cd "$work" && npm view "uplot@${VERSION}" dist.integrity)"
cat > "$out/SOURCE.md" <<MD
# uPlot ${VERSION}

From the npm registry: \`npm pack uplot@${VERSION}\` (${integrity}), by \`tools/vendor-uplot.sh\`.
Files: \`dist/uPlot.iife.min.js\`, \`dist/uPlot.min.css\`, \`LICENSE\` (MIT, Leon Sorokin), unchanged.
Project: https://github.com/leeoniya/uPlot

sha256:
\`\`\`
$(cd "$out" && sha256sum uPlot.iife.min.js uPlot.min.css LICENSE)
\`\`\`
MD
echo "vendored uPlot ${VERSION} into $out"

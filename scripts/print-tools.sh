#!/usr/bin/env bash
# The independent tools the print tests check merchgen's files with (tests/integration/
# print_shop.rs): qpdf (`qpdf --check`), Ghostscript (`gs -sDEVICE=tiffsep`: the CutContour
# plate) and librsvg (`rsvg-convert`: renders the vector SVGs). Installed from Debian's packages
# when missing; `make test` runs this before the tests.
set -euo pipefail
missing=()
command -v qpdf >/dev/null || missing+=(qpdf)
command -v gs >/dev/null || missing+=(ghostscript)
command -v rsvg-convert >/dev/null || missing+=(librsvg2-bin)
if ((${#missing[@]} == 0)); then
    echo "print-tools.sh: qpdf, gs and rsvg-convert are installed"
    exit 0
fi
sudo=""
[[ "$(id -u)" == 0 ]] || sudo="sudo"
echo "print-tools.sh: installing ${missing[*]} (apt)"
# A fresh machine may have no package lists yet; update only when the install cannot find them.
if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

#!/usr/bin/env bash
# System packages the project needs (data sets for the demos and evaluation, chromium for
# the browser test). Non-interactive, idempotent, skipped where not root or apt is absent.
set -euo pipefail
packages=(dataset-fashion-mnist asterisk-core-sounds-fr-wav)
if [ "${URGENCE_WITH_BROWSER:-1}" = "1" ]; then
  packages+=(chromium)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != "0" ]; then
  echo "setup-system: cannot install ${missing[*]} (needs root and apt-get); tests that need them will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# System packages the project needs (data sets for the demos and evaluation, the Pico
# synthesiser and the MBROLA voices for the training corpus, chromium for the browser test).
# Non-interactive, idempotent, skipped where not root or apt is absent.
set -euo pipefail
packages=(dataset-fashion-mnist asterisk-core-sounds-fr-wav libttspico-utils)
# MBROLA (urgence/corpus/mbrola.py): Debian's espeak-ng command speaks the mb-* voices through
# the mbrola program; the nine French voices of France, Belgium and Quebec
packages+=(espeak-ng mbrola mbrola-fr1 mbrola-fr2 mbrola-fr3 mbrola-fr4 mbrola-fr5 mbrola-fr6 mbrola-fr7
  mbrola-ca1 mbrola-ca2)
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
# The policy is read whole before grep: with pipefail, `apt-cache policy | grep -q` fails
# whenever grep exits before apt-cache has written everything (SIGPIPE).
installable() {
  local policy
  policy=$(apt-cache policy "$1" 2>/dev/null)
  grep -q 'Candidate: [^(]' <<<"$policy"
}
if { ! installable libttspico-utils || ! installable mbrola; } && grep -q '^ID=debian' /etc/os-release; then
  # Pico's code is Apache-2.0, but its voice data comes without the sources that built it,
  # so Debian ships it in the non-free component, as the MBROLA voices (free to use and
  # share, not to sell), and the mbrola program, which needs them, in contrib. A default
  # install lists neither.
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$codename" > /etc/apt/sources.list.d/urgence-non-free.sources
  apt-get update -qq
fi
available=()
for p in "${missing[@]}"; do
  if installable "$p"; then
    available+=("$p")
  else
    echo "setup-system: $p is not in this system's package lists; what needs it will skip" >&2
  fi
done
if [ ${#available[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${available[@]}" >/dev/null
fi

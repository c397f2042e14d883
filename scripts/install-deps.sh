#!/usr/bin/env bash
# Installs the named Debian packages that are missing. postfix is installed with the
# debconf answer "No configuration" (no mail system is set up), and a minimal
# /etc/postfix/main.cf is written when none exists, so the real postmap can run as the
# test oracle. Nothing is done when everything is present.
set -euo pipefail
missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ " $* " == *" postfix "* ]] && [ ! -e /etc/postfix/main.cf ] && [ "$(id -u)" -eq 0 ]; then
    # What Debian's own configuration step would write first: the compatibility level
    # that turns smtputf8_enable on, as on every current Postfix installation.
    printf 'compatibility_level = 3.6\n' > /etc/postfix/main.cf
    echo "wrote a minimal /etc/postfix/main.cf (compatibility_level = 3.6)"
fi

#!/usr/bin/env bash
# Runs every test hb has: formatting, lints, unit tests and the end-to-end tests that start
# the real binaries. Installs what the tests need first when it is missing (Debian packages;
# as root, or through sudo). .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# tool -> Debian package
declare -A needs=(
    [nc]=netcat-openbsd
    [curl]=curl
    [openssl]=openssl
    [systemd-analyze]=systemd
)
missing=()
for tool in "${!needs[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${needs[$tool]}")
done
# Python modules -> Debian package (the mail tests talk to a real SMTP server, aiosmtpd;
# Debian's own python3, whatever else is on PATH).
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
# The DNS tests start a real BIND and query it; /usr/sbin is not on every user's PATH.
[ -x /usr/sbin/named ] || missing+=(bind9)
[ -x /usr/bin/nsupdate ] && [ -x /usr/bin/dig ] || missing+=(bind9-dnsutils)
# The dashboard test drives a headless Chromium over WebDriver.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
# hbc's ping_monitor runs ping(8).
[ -x /usr/bin/ping ] || [ -x /bin/ping ] || missing+=(iputils-ping)
# /metrics is checked with promtool.
[ -x /usr/bin/promtool ] || missing+=(prometheus)
if ((${#missing[@]})); then
    echo "test.sh: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# etc/hb.yaml runs the children as _hb, like a real install; `-n` as root checks it exists.
if [ "$(id -u)" = 0 ] && ! id _hb >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin _hb
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests run the role binaries, which `cargo test` alone does not build.
cargo build --workspace --bins --locked
cargo test --workspace --locked

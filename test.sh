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
# The static hbc is linked against musl; the e2e test asks `file` what it built.
command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
command -v file >/dev/null 2>&1 || missing+=(file)
if ((${#missing[@]})); then
    echo "test.sh: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# etc/hb.yaml runs the children as _hb, like a real install; `-n` as root checks it exists.
if [ "$(id -u)" = 0 ] && ! id _hb >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin _hb
fi

# The other platforms hb builds for: rustup brings their standard libraries.
static=x86_64-unknown-linux-musl
others=(x86_64-unknown-freebsd x86_64-unknown-netbsd x86_64-apple-darwin "$static")
installed=$(rustup target list --installed)
for target in "${others[@]}"; do
    grep -qx "$target" <<<"$installed" || rustup target add "$target"
done
# C parts (ring, SQLite) are compiled for the BSDs by the host's cc: a check only needs them
# to build, not to link; cc-rs would look for a cross compiler named after the target.
export CC_x86_64_unknown_freebsd=cc AR_x86_64_unknown_freebsd=ar
export CC_x86_64_unknown_netbsd=cc AR_x86_64_unknown_netbsd=ar

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# FreeBSD with clippy (a check and more), so a cfg branch for it cannot rot; NetBSD checked.
cargo clippy --workspace --all-targets --locked --target x86_64-unknown-freebsd -- -D warnings
cargo check --workspace --all-targets --locked --target x86_64-unknown-netbsd
# ring (rustls, for https checks) needs a C compiler and headers for macOS, which this
# machine lacks: hbc is checked there without its https feature (docs/PLATFORMS.md).
cargo check -p hbc --all-targets --locked --no-default-features --target x86_64-apple-darwin
# The end-to-end tests run the role binaries, which `cargo test` alone does not build, and
# the static hbc (one binary for every Linux: old glibc, Alpine, busybox).
cargo build --workspace --bins --locked
cargo build -p hbc --locked --target "$static"
cargo test --workspace --locked

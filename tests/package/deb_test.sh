#!/usr/bin/env bash
# The Debian package, built by cpack from the already-built targets of BUILD_DIR (no rebuild),
# unpacked with dpkg-deb -x into a scratch root: its layout and control files, the config file
# against herald's real flags, and the unpacked herald started from the unpacked paths (config,
# static files found beside the binary), probed on /healthz, /herald.js and /admin/.
#   tests/package/deb_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
scratch=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cpack --config "$build/CPackConfig.cmake" -G DEB -B "$scratch/out" >"$scratch/cpack.log" 2>&1 ||
  { cat "$scratch/cpack.log"; fail "cpack"; }
deb=$(ls "$scratch"/out/herald_*.deb) || fail "no herald_*.deb in $(ls "$scratch/out")"
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

# Control: name, version, dependencies found from the binaries, maintainer scripts, conffiles.
dpkg-deb -f "$deb" Package | grep -qx herald || fail "Package is not herald"
dpkg-deb -f "$deb" Version | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+' || fail "Version"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libgrpc++ libprotobuf libc6 passwd; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
dpkg-deb -e "$deb" "$scratch/control"
grep -qx /etc/herald/herald.toml "$scratch/control/conffiles" || fail "herald.toml is not a conffile"
for script in postinst prerm postrm; do
  [ -x "$scratch/control/$script" ] || fail "$script missing or not executable"
  sh -n "$scratch/control/$script" || fail "$script: syntax"
done
grep -q "useradd --system" "$scratch/control/postinst" || fail "postinst does not create the user"

# Files.
root="$scratch/root"
dpkg-deb -x "$deb" "$root"
for f in usr/bin/herald usr/bin/heraldctl usr/share/herald/static/herald.js \
  usr/share/herald/static/herald.d.ts usr/share/herald/static/index.html \
  usr/share/herald/static/board.html usr/share/herald/static/demo/board.js \
  usr/share/herald/static/admin/index.html usr/share/herald/static/admin/admin.js \
  usr/lib/systemd/system/herald.service etc/herald/herald.toml; do
  [ -s "$root/$f" ] || fail "/$f missing from the package"
done
[ ! -e "$root/usr/share/herald/static/package.json" ] || fail "package.json shipped"
[[ "$(file -b "$root/usr/bin/herald")" != *"not stripped"* ]] || fail "herald is not stripped"
unit="$root/usr/lib/systemd/system/herald.service"
grep -qx "User=herald" "$unit" || fail "the unit does not run as herald"
grep -qx "ExecStart=/usr/bin/herald --config /etc/herald/herald.toml" "$unit" || fail "ExecStart"
version=$("$root/usr/bin/herald" --version)
[[ "$version" == "herald $(dpkg-deb -f "$deb" Version)"* ]] ||
  fail "herald --version ($version) does not match the package version"
[[ "$("$root/usr/bin/heraldctl" --version)" == "heraldctl "* ]] || fail "heraldctl --version"

# The config: every flag of `herald --help` is there, commented, and only those; uncommented,
# every line is a valid setting.
herald="$root/usr/bin/herald"
config="$root/etc/herald/herald.toml"
flags=$("$herald" --help | grep -oE '^  --[a-z0-9-]+' | sed 's/^  --//' |
  grep -vxE 'help|config|version|print-config' | sort)
keys=$(grep -oE '^# [a-z0-9-]+ = ' "$config" | sed -E 's/^# //; s/ = $//' | sort)
[ "$flags" = "$keys" ] || { diff <(echo "$flags") <(echo "$keys") >&2 || true; fail "herald.toml keys differ from herald's flags (< flags, > file)"; }
if grep -vE '^(#.*)?$' "$config"; then fail "herald.toml sets a key (every key should be commented)"; fi
# (static-dir: the unpacked folder, as /usr/share/herald/static need not exist here)
sed -E 's/^# ([a-z0-9-]+ = )/\1/; s|"/usr/share/herald/static"|"'"$root"'/usr/share/herald/static"|' \
  "$config" >"$scratch/all.toml"
"$herald" --config "$scratch/all.toml" --print-config >"$scratch/print.txt" 2>&1 ||
  { cat "$scratch/print.txt"; fail "herald.toml with every key uncommented is refused"; }

# The unpacked herald, with the unpacked config and no --static-dir: it finds its assets beside
# the binary (<bin>/../share/herald/static).
printed=$("$herald" --config "$config" --print-config)
grep -q "^static-dir = \"$root/usr/share/herald/static\"" <<<"$printed" ||
  fail "static-dir is not the unpacked /usr/share/herald/static: $(grep static-dir <<<"$printed")"
"$herald" --config "$config" --ws-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 --threads 1 \
  >"$scratch/out.txt" 2>"$scratch/err.txt" &
pid=$!
for _ in $(seq 200); do
  grep -q "^grpc listening" "$scratch/out.txt" && break
  kill -0 "$pid" 2>/dev/null || { cat "$scratch/err.txt"; fail "herald exited"; }
  sleep 0.05
done
ws=$(sed -n 's/^ws listening on //p' "$scratch/out.txt")
[ -n "$ws" ] || { cat "$scratch/err.txt"; fail "herald did not start"; }
# (bodies captured first: `curl | grep -q` fails under pipefail when grep stops reading early)
healthz=$(curl -sf "http://$ws/healthz") || fail "/healthz"
[[ "$healthz" == *'"status":"ok"'* ]] || fail "/healthz: $healthz"
curl -sf "http://$ws/herald.js" -o "$scratch/herald.js" || fail "/herald.js"
cmp -s "$scratch/herald.js" "$root/usr/share/herald/static/herald.js" || fail "/herald.js differs"
admin=$(curl -sf "http://$ws/admin/") || fail "/admin/"
[[ "$admin" == *"<title>Herald admin</title>"* ]] || fail "/admin/ is not the admin page"
kill -TERM "$pid"
wait "$pid" || fail "herald did not exit 0 on SIGTERM"
pid=
echo "ok: package layout, config and the unpacked herald"

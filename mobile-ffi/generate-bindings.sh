#!/usr/bin/env bash
# Generates the Kotlin, Swift and Python bindings of tournee-mobile-ffi from the built library.
#
#   bash mobile-ffi/generate-bindings.sh [OUT_DIR]     (default: target/bindings)
#
# Builds the library for the host (debug), then runs the workspace's pinned uniffi-bindgen in
# library mode, so the bindings match the scaffolding compiled into the library. OUT_DIR gets
# kotlin/, swift/ and python/; python/ also gets a copy of the host library so the module
# imports as is. Set PROFILE=release for a release build. Bindings do not depend on the target:
# generate them once on the host and ship them with the Android or iOS libraries.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/target/bindings}"
profile="${PROFILE:-debug}"
cd "$root"

if [[ "$profile" == "release" ]]; then
  cargo build --locked -p tournee-mobile-ffi --lib --release
else
  cargo build --locked -p tournee-mobile-ffi --lib
fi
cargo build --locked -p uniffi-bindgen

target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
  Darwin) library="$target_dir/$profile/libtournee_mobile_ffi.dylib" ;;
  *) library="$target_dir/$profile/libtournee_mobile_ffi.so" ;;
esac
bindgen="$target_dir/debug/uniffi-bindgen"

rm -rf "$out/kotlin" "$out/swift" "$out/python"
mkdir -p "$out/kotlin" "$out/swift" "$out/python"
for language in kotlin swift python; do
  "$bindgen" generate --library "$library" --language "$language" --out-dir "$out/$language" \
    --no-format
done
cp "$library" "$out/python/"
echo "bindings written to $out (kotlin/, swift/, python/)"
